//! Subscriptions as cursors over the durable log: catch-up from a seq or an epoch that joins live delivery
//! without gap or duplicate, restart on the same data directory, and retention.

mod common;

use std::time::Duration;

use common::mls_group::new_group;
use common::{ack_seq, blob, channel, config, epoch, error_code, meta, seq, start, subscription_ack, From, Stream};
use prost::Message as _;
use skytale_proto::meta::{self as keys, error_code as code};

/// `count` application messages of one group with ids `{prefix}{i}`.
fn applications(group: &mut impl FnMut(&[u8]) -> Vec<u8>, prefix: &str, count: usize) -> Vec<(String, Vec<u8>)> {
    (0..count)
        .map(|i| {
            let id = format!("{prefix}{i}");
            let blob = group(id.as_bytes());
            (id, blob)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_from_a_seq_joins_live_delivery_without_gap_or_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(config(dir.path())).await;
    let ch = channel("acme/team/catchup");
    let mut group = new_group(false);
    let mut app = |text: &[u8]| group.application(text);
    // More than the relay's in-memory cache holds, so catch-up starts in SQLite and ends in the cache.
    let backlog = applications(&mut app, "old", 1500);
    let live = applications(&mut app, "new", 500);
    let all: Vec<Vec<u8>> = backlog.iter().chain(&live).map(|(_, b)| b.clone()).collect();

    let mut publisher = Stream::open(relay.local_addr()).await;
    assert_eq!(publisher.publish_all(&ch, backlog).await, (1..=1500).collect::<Vec<u64>>());

    let mut from_start = Stream::open(relay.local_addr()).await;
    let mut from_middle = Stream::open(relay.local_addr()).await;
    // The second half is published while both subscriptions are catching up.
    let concurrent = {
        let ch = ch.clone();
        tokio::spawn(async move { publisher.publish_all(&ch, live).await })
    };
    from_start.subscribe_ok(&ch, 1, From::Seq(1)).await;
    from_middle.subscribe_ok(&ch, 1, From::Seq(1200)).await;

    for (stream, first) in [(&mut from_start, 1u64), (&mut from_middle, 1200)] {
        let deliveries = stream.deliveries((2001 - first) as usize).await;
        let seqs: Vec<u64> = deliveries.iter().map(seq).collect();
        assert_eq!(seqs, (first..=2000).collect::<Vec<u64>>());
        for delivery in &deliveries {
            assert_eq!(blob(delivery), all[(seq(delivery) - 1) as usize].as_slice());
        }
    }
    assert_eq!(concurrent.await.unwrap(), (1501..=2000).collect::<Vec<u64>>());
    relay.shutdown().await;
}

#[tokio::test]
async fn subscribe_from_an_epoch_starts_at_its_first_message_and_continues_live() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(config(dir.path())).await;
    let ch = channel("acme/team/epochs");
    let mut group = new_group(false);
    let mut publisher = Stream::open(relay.local_addr()).await;
    // seq: 1-2 epoch 0, 3 commit (epoch 0), 4-5 epoch 1, 6 commit (epoch 1), 7 epoch 2
    for (i, blob) in [
        group.application(b"a"),
        group.application(b"b"),
        group.commit(),
        group.application(b"c"),
        group.application(b"d"),
        group.commit(),
        group.application(b"e"),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(publisher.publish_ok(&ch, &format!("m{i}"), blob).await, i as u64 + 1);
    }

    let mut joiner = Stream::open(relay.local_addr()).await;
    let ack = joiner.subscribe_ok(&ch, 1, From::Epoch(1)).await;
    assert_eq!(meta(&ack, keys::CHANNEL_EPOCH), Some("2"));
    let caught_up = joiner.deliveries(4).await;
    assert_eq!(caught_up.iter().map(seq).collect::<Vec<_>>(), [4, 5, 6, 7]);
    assert_eq!(caught_up.iter().map(epoch).collect::<Vec<_>>(), [1, 1, 1, 2]);

    // A subscription from an epoch the channel has not reached yet skips everything before it.
    let mut early = Stream::open(relay.local_addr()).await;
    early.subscribe_ok(&ch, 1, From::Epoch(3)).await;
    publisher.publish_ok(&ch, "f", group.application(b"f")).await; // seq 8, epoch 2
    publisher.publish_ok(&ch, "g", group.commit()).await; // seq 9, epoch 2 -> 3
    publisher.publish_ok(&ch, "h", group.application(b"h")).await; // seq 10, epoch 3

    assert_eq!(joiner.deliveries(3).await.iter().map(seq).collect::<Vec<_>>(), [8, 9, 10]);
    let first_of_epoch_3 = early.recv().await;
    assert_eq!((seq(&first_of_epoch_3), epoch(&first_of_epoch_3)), (10, 3));
    relay.shutdown().await;
}

#[tokio::test]
async fn a_restarted_relay_keeps_the_log_sequence_epoch_and_idempotency() {
    let dir = tempfile::tempdir().unwrap();
    let ch = channel("acme/team/durable");
    let mut group = new_group(false);
    let first = group.application(b"first");
    let stale_commit = group.unapplied_commit();
    let blobs = [first.clone(), group.commit(), group.application(b"third")];

    let relay = start(config(dir.path())).await;
    let mut publisher = Stream::open(relay.local_addr()).await;
    for (i, b) in blobs.iter().enumerate() {
        publisher.publish_ok(&ch, &format!("m{i}"), b.clone()).await;
    }
    drop(publisher);
    relay.shutdown().await;

    let relay = start(config(dir.path())).await;
    let mut reader = Stream::open(relay.local_addr()).await;
    let ack = reader.subscribe_ok(&ch, 1, From::Seq(1)).await;
    assert_eq!(meta(&ack, keys::CHANNEL_EPOCH), Some("1"));
    let stored = reader.deliveries(3).await;
    assert_eq!(stored.iter().map(seq).collect::<Vec<_>>(), [1, 2, 3]);
    for (delivery, sent) in stored.iter().zip(&blobs) {
        assert_eq!(blob(delivery), sent.as_slice());
    }

    let mut publisher = Stream::open(relay.local_addr()).await;
    assert_eq!(publisher.publish_ok(&ch, "m2", blobs[2].clone()).await, 3, "idempotency survives the restart");
    // A retry from an epoch since passed: SQLite finds its msg-id. A one-replica JetStream stream compares
    // sequences before msg-ids, so a relay that did not store it itself (here: before its restart) answers
    // stale_epoch and stores nothing (docs/relay.md, "The JetStream log", "Retries").
    let late_retry = publisher.publish(&ch, "m0", first).await;
    match common::store_is_jetstream() {
        false => assert_eq!(ack_seq(&late_retry), 1, "idempotency survives the restart"),
        true => assert_eq!(error_code(&late_retry), code::STALE_EPOCH),
    }
    assert_eq!(error_code(&publisher.publish(&ch, "stale", stale_commit).await), code::STALE_EPOCH);
    assert_eq!(publisher.publish_ok(&ch, "m3", group.application(b"fourth")).await, 4);
    assert_eq!(seq(&reader.deliveries(1).await[0]), 4);
    relay.shutdown().await;
}

#[tokio::test]
async fn messages_beyond_the_byte_budget_are_dropped_and_asking_for_them_is_an_error() {
    if common::skipped_on_jetstream("retention_bytes, which the relay refuses with the JetStream log") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ch = channel("acme/team/retention");
    let mut group = new_group(false);
    let messages: Vec<(String, Vec<u8>)> =
        (1..=5).map(|i| (format!("m{i}"), group.application(format!("message {i}").as_bytes()))).collect();
    // The relay stores each Publish frame; keep room for exactly the last two.
    let frame_len = |(_, b): &(String, Vec<u8>)| common::publish_frame(&ch, b.clone()).encoded_len() as u64;
    let last_two = frame_len(&messages[3]) + frame_len(&messages[4]);

    let relay = start(config(dir.path())).await;
    let mut publisher = Stream::open(relay.local_addr()).await;
    assert_eq!(publisher.publish_all(&ch, messages).await, [1, 2, 3, 4, 5]);
    drop(publisher);
    relay.shutdown().await;

    let mut cfg = config(dir.path());
    cfg.retention_bytes = Some(last_two);
    let relay = start(cfg).await;
    let mut reader = Stream::open(relay.local_addr()).await;
    for from in [From::Seq(1), From::Seq(3), From::Epoch(0)] {
        let refused = reader.subscribe(&ch, 1, from).await;
        assert!(!subscription_ack(&refused).success, "{from:?}");
        assert_eq!(meta(&refused, keys::ERROR_CODE), Some(code::RETENTION_EXPIRED), "{from:?}");
        assert!(subscription_ack(&refused).error.contains("seq 4"), "{refused:?}");
    }
    reader.subscribe_ok(&ch, 2, From::Seq(4)).await;
    assert_eq!(reader.deliveries(2).await.iter().map(seq).collect::<Vec<_>>(), [4, 5]);

    let mut publisher = Stream::open(relay.local_addr()).await;
    assert_eq!(publisher.publish_ok(&ch, "m6", group.application(b"six")).await, 6, "seq continues");
    assert_eq!(seq(&reader.deliveries(1).await[0]), 6);
    relay.shutdown().await;
}

#[tokio::test]
async fn messages_older_than_retention_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let ch = channel("acme/team/aging");
    let mut group = new_group(false);
    let relay = start(config(dir.path())).await;
    let mut publisher = Stream::open(relay.local_addr()).await;
    // Two: the JetStream log always keeps a channel's newest message, its head (docs/relay.md, "The JetStream
    // log"); SQLite keeps the head apart and drops both.
    publisher.publish_ok(&ch, "old", group.application(b"old")).await;
    publisher.publish_ok(&ch, "newest", group.application(b"newest")).await;
    drop(publisher);
    relay.shutdown().await;
    // Retention compares storage times with the clock: make sure it has moved past the stored messages.
    tokio::time::sleep(Duration::from_millis(5)).await;

    let mut cfg = config(dir.path());
    cfg.retention = Duration::ZERO;
    let relay = start(cfg).await;
    let mut reader = Stream::open(relay.local_addr()).await;
    let refused = reader.subscribe(&ch, 1, From::Seq(1)).await;
    assert_eq!(meta(&refused, keys::ERROR_CODE), Some(code::RETENTION_EXPIRED));
    reader.subscribe_ok(&ch, 2, From::Seq(3)).await;
    relay.shutdown().await;
}
