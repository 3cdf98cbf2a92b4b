use mls_rs_core::group::{EpochRecord, GroupState, GroupStateStorage};
use rusqlite::Connection;
use zeroize::Zeroizing;

use super::pending_welcome::PendingWelcome;
use super::*;

fn record(name: &str, applied: u64) -> ChannelRecord {
    ChannelRecord {
        name: name.into(),
        group_id: b"g1".to_vec(),
        applied_seq: applied,
        join_epoch: 2,
        status: ChannelStatus::Active,
        owner: true,
    }
}

fn message(seq: u64) -> InboxItem {
    InboxItem::Message {
        payload: format!("m{seq}").into_bytes(),
        sender: b"bob".to_vec(),
        seq,
        epoch: 3,
        stored_at_ms: Some(1_700_000_000_000 + seq),
    }
}

#[test]
fn staged_state_is_visible_but_written_only_with_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Store::open(&path).unwrap();
    let mut groups = GroupStore(store.clone());
    groups
        .write(
            GroupState { id: b"g1".to_vec(), data: Zeroizing::new(b"snap-1".to_vec()) },
            vec![EpochRecord::new(1, Zeroizing::new(b"e1".to_vec()))],
            vec![],
        )
        .unwrap();
    assert_eq!(groups.state(b"g1").unwrap().unwrap().as_slice(), b"snap-1");
    assert_eq!(groups.max_epoch_id(b"g1").unwrap(), Some(1));

    // Not persisted yet: a fresh store (a crash) sees nothing.
    let reopened = Store::open(&path).unwrap();
    assert_eq!(GroupStore(reopened).state(b"g1").unwrap(), None);

    store.persist(&record("a/b/c", 7), &[message(7)]).unwrap();
    let reopened = Store::open(&path).unwrap();
    let groups = GroupStore(reopened.clone());
    assert_eq!(groups.state(b"g1").unwrap().unwrap().as_slice(), b"snap-1");
    assert_eq!(groups.epoch(b"g1", 1).unwrap().unwrap().as_slice(), b"e1");
    assert_eq!(reopened.channels().unwrap(), vec![record("a/b/c", 7)]);
}

#[test]
fn pending_welcomes_are_kept_until_deleted_and_forgotten_with_the_channel() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Store::open(&path).unwrap();
    let ids = vec!["j1".to_owned(), "j2".to_owned()];
    let first = store.save_pending_welcome("a/b/c", &ids, b"w1").unwrap();
    store.save_pending_welcome("a/b/c", &ids[..1], b"w2").unwrap();
    store.save_pending_welcome("x/y/z", &ids, b"w3").unwrap();
    let reopened = Store::open(&path).unwrap();
    let pending = reopened.pending_welcomes("a/b/c").unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0], PendingWelcome { id: first, join_ids: ids.clone(), welcome: b"w1".to_vec() });
    reopened.delete_pending_welcome(first).unwrap();
    assert_eq!(reopened.pending_welcomes("a/b/c").unwrap().len(), 1);
    reopened.delete_channel("a/b/c", b"g1").unwrap();
    assert!(reopened.pending_welcomes("a/b/c").unwrap().is_empty());
    assert_eq!(reopened.pending_welcomes("x/y/z").unwrap().len(), 1);
}

#[test]
fn a_registry_without_the_owner_column_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let old = Connection::open(&path).unwrap();
    old.execute_batch(
        "CREATE TABLE channel (name TEXT PRIMARY KEY, group_id BLOB NOT NULL UNIQUE, applied_seq INTEGER NOT NULL,
         join_epoch INTEGER NOT NULL, status TEXT NOT NULL);
         INSERT INTO channel VALUES ('a/b/c', x'6731', 4, 1, 'active');",
    )
    .unwrap();
    drop(old);
    let store = Store::open(&path).unwrap();
    let expected = ChannelRecord { applied_seq: 4, join_epoch: 1, owner: false, ..record("a/b/c", 0) };
    assert_eq!(store.channels().unwrap(), vec![expected]);
}

#[test]
fn inbox_is_handed_out_in_order_and_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let failure = InboxItem::MlsFailure { seq: 6, reason: "bad mac".into() };
    store.persist(&record("a/b/c", 6), &[message(5), failure.clone()]).unwrap();
    store.persist(&record("a/b/c", 7), &[message(7)]).unwrap();
    assert_eq!(store.take_inbox("a/b/c", 1, |_| {}).unwrap(), vec![message(5)]);
    assert_eq!(store.take_inbox("a/b/c", 1, |_| {}).unwrap(), vec![failure]);
    assert_eq!(store.take_inbox("a/b/c", 1, |_| {}).unwrap(), vec![message(7)]);
    assert_eq!(store.take_inbox("a/b/c", 1, |_| {}).unwrap(), vec![]);
    assert_eq!(store.take_inbox("x/y/z", 1, |_| {}).unwrap(), vec![]);
}

#[test]
fn a_batch_take_stops_at_a_failure_which_is_taken_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let failure = InboxItem::MlsFailure { seq: 7, reason: "bad mac".into() };
    store.persist(&record("a/b/c", 9), &[message(5), message(6), failure.clone(), message(8), message(9)]).unwrap();
    store.persist(&ChannelRecord { group_id: b"g2".to_vec(), ..record("x/y/z", 1) }, &[message(1)]).unwrap();
    assert_eq!(store.take_inbox("a/b/c", 10, |_| {}).unwrap(), vec![message(5), message(6)]);
    assert_eq!(store.take_inbox("a/b/c", 10, |_| {}).unwrap(), vec![failure]);
    assert_eq!(store.take_inbox("a/b/c", 1, |_| {}).unwrap(), vec![message(8)]);
    assert_eq!(store.take_inbox("a/b/c", 10, |_| {}).unwrap(), vec![message(9)]);
    assert_eq!(store.take_inbox("a/b/c", 10, |_| {}).unwrap(), vec![]);
    assert_eq!(store.take_inbox("x/y/z", 10, |_| {}).unwrap(), vec![message(1)]);
}

#[test]
fn old_epochs_are_pruned_and_delete_forgets_everything() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let mut groups = GroupStore(store.clone());
    for epoch in 1..=6 {
        groups
            .write(
                GroupState { id: b"g1".to_vec(), data: Zeroizing::new(vec![epoch as u8]) },
                vec![EpochRecord::new(epoch, Zeroizing::new(vec![epoch as u8]))],
                vec![],
            )
            .unwrap();
        store.persist(&record("a/b/c", epoch), &[]).unwrap();
    }
    assert_eq!(groups.epoch(b"g1", 2).unwrap(), None);
    assert!(groups.epoch(b"g1", 6).unwrap().is_some());
    store.persist(&record("a/b/c", 7), &[message(7)]).unwrap();
    store.delete_channel("a/b/c", b"g1").unwrap();
    assert!(store.channels().unwrap().is_empty());
    assert_eq!(groups.state(b"g1").unwrap(), None);
    assert_eq!(store.take_inbox("a/b/c", 1, |_| {}).unwrap(), vec![]);
}
