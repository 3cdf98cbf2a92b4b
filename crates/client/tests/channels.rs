//! Membership and messaging against a real relay on loopback.

mod common;

use common::*;
use skytale_client::Recv;

fn unix_millis() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[test]
fn two_members_exchange_messages_in_order_without_self_delivery() {
    let relay = TestRelay::start();
    let (alice, _a) = client(&relay, "alice");
    let (bob, _b) = client(&relay, "bob");
    let a = alice.create_channel("acme/team/general").unwrap();
    let b = add(&a, &bob);
    assert_eq!(a.epoch(), 1);
    assert_eq!(b.epoch(), 1);

    let before_send = unix_millis();
    for i in 0..5 {
        a.send(format!("a{i}").as_bytes()).unwrap();
    }
    b.send(b"hello alice").unwrap();
    for i in 0..5 {
        let m = next(&b);
        assert_eq!(m.payload, format!("a{i}").into_bytes());
        assert_eq!(m.sender, b"alice");
        assert_eq!(m.epoch, 1);
        let stored_at = m.stored_at_ms.expect("the relay stamps its storage time on every delivery");
        assert!((before_send..=unix_millis()).contains(&stored_at), "stored at {stored_at}, sent after {before_send}");
    }
    let m = next(&a);
    assert_eq!((m.payload.as_slice(), m.sender.as_slice()), (&b"hello alice"[..], &b"bob"[..]));
    assert_idle(&a);
    assert_idle(&b);

    let mut members = a.members().unwrap();
    members.sort();
    assert_eq!(members, vec![b"alice".to_vec(), b"bob".to_vec()]);
    assert_eq!(alice.channels(), vec!["acme/team/general".to_string()]);
}

#[test]
fn three_members_all_see_everything_from_the_others() {
    let relay = TestRelay::start();
    let (alice, _a) = client(&relay, "alice");
    let (bob, _b) = client(&relay, "bob");
    let (carol, _c) = client(&relay, "carol");
    let a = alice.create_channel("acme/team/three").unwrap();
    let b = add(&a, &bob);
    let c = add(&a, &carol);
    a.send(b"from a").unwrap();
    b.send(b"from b").unwrap();
    c.send(b"from c").unwrap();
    assert_eq!(next_text(&b), "from a");
    assert_eq!(next_text(&b), "from c");
    assert_eq!(next_text(&c), "from a");
    assert_eq!(next_text(&c), "from b");
    assert_eq!(next_text(&a), "from b");
    assert_eq!(next_text(&a), "from c");
    for ch in [&a, &b, &c] {
        assert_eq!(ch.epoch(), 2);
        assert_idle(ch);
    }
}

#[test]
fn member_added_while_others_send_gets_everything_from_its_epoch() {
    let relay = TestRelay::start();
    let (alice, _a) = client(&relay, "alice");
    let (bob, _b) = client(&relay, "bob");
    let (carol, _c) = client(&relay, "carol");
    let a = alice.create_channel("acme/team/late").unwrap();
    let b = add(&a, &bob);
    let sender = {
        let b = b.clone();
        std::thread::spawn(move || {
            for i in 0..30 {
                b.send(format!("b{i}").as_bytes()).unwrap();
            }
        })
    };
    let c = add(&a, &carol);
    let join_epoch = c.epoch();
    sender.join().unwrap();
    b.send(b"last").unwrap();
    // Carol sees a suffix of bob's messages, from her epoch on, in order, ending with "last".
    let mut seen = Vec::new();
    loop {
        let m = next(&c);
        assert!(m.epoch >= join_epoch);
        let text = String::from_utf8(m.payload).unwrap();
        if text == "last" {
            break;
        }
        seen.push(text.trim_start_matches('b').parse::<u32>().unwrap());
    }
    assert!(seen.windows(2).all(|w| w[1] == w[0] + 1), "gap or reorder: {seen:?}");
    if let Some(last) = seen.last() {
        assert_eq!(*last, 29, "the suffix must run to the end: {seen:?}");
    }
    // Alice got all of them.
    for i in 0..30 {
        assert_eq!(next_text(&a), format!("b{i}"));
    }
    assert_eq!(next_text(&a), "last");
}

#[test]
fn concurrent_adds_both_succeed_and_everyone_ends_at_the_same_epoch() {
    let relay = TestRelay::start();
    let (alice, _a) = client(&relay, "alice");
    let (bob, _b) = client(&relay, "bob");
    let (carol, _c) = client(&relay, "carol");
    let (dave, _d) = client(&relay, "dave");
    let a = alice.create_channel("acme/team/race").unwrap();
    let b = add(&a, &bob);
    let kp_c = carol.generate_key_package().unwrap();
    let kp_d = dave.generate_key_package().unwrap();
    let (a2, b2) = (a.clone(), b.clone());
    let t1 = std::thread::spawn(move || a2.add_member(&kp_c).unwrap());
    let t2 = std::thread::spawn(move || b2.add_member(&kp_d).unwrap());
    let welcome_c = t1.join().unwrap();
    let welcome_d = t2.join().unwrap();
    let c = carol.join_channel("acme/team/race", &welcome_c).unwrap();
    let d = dave.join_channel("acme/team/race", &welcome_d).unwrap();
    // Two commits after bob's add: epoch 3 everywhere once the stream has applied them.
    a.send(b"sync").unwrap();
    assert_eq!(next_text(&b), "sync");
    let later_joiner = if c.epoch() == 3 { &c } else { &d };
    assert_eq!(next_text(later_joiner), "sync");
    for ch in [&a, &b, &c, &d] {
        assert!(ch.epoch() >= 2);
    }
    assert_eq!(a.epoch(), 3);
    assert_eq!(b.epoch(), 3);
    d.send(b"from dave").unwrap();
    assert_eq!(next_text(&a), "from dave");
    assert_eq!(next_text(&b), "from dave");
    assert_eq!(next_text(&c), "from dave");
    assert_eq!(a.members().unwrap().len(), 4);
}

#[test]
fn removed_member_gets_an_error_and_the_others_continue() {
    let relay = TestRelay::start();
    let (alice, _a) = client(&relay, "alice");
    let (bob, _b) = client(&relay, "bob");
    let (carol, _c) = client(&relay, "carol");
    let a = alice.create_channel("acme/team/remove").unwrap();
    let b = add(&a, &bob);
    let c = add(&a, &carol);
    a.send(b"before").unwrap();
    a.remove_member(b"bob").unwrap();
    a.send(b"after").unwrap();
    assert_eq!(next_text(&b), "before");
    let err = b.recv(Some(WAIT)).unwrap_err();
    assert!(err.to_string().starts_with("channel error: removed from channel acme/team/remove"), "{err}");
    assert!(b.send(b"x").is_err());
    assert_eq!(next_text(&c), "before");
    assert_eq!(next_text(&c), "after");
    c.send(b"still here").unwrap();
    assert_eq!(next_text(&a), "still here");
    assert_eq!(a.members().unwrap().len(), 2);
}

#[test]
fn leave_is_committed_by_the_others() {
    let relay = TestRelay::start();
    let (alice, _a) = client(&relay, "alice");
    let (bob, _b) = client(&relay, "bob");
    let (carol, _c) = client(&relay, "carol");
    let a = alice.create_channel("acme/team/leave").unwrap();
    let b = add(&a, &bob);
    let c = add(&a, &carol);
    c.leave().unwrap();
    assert_eq!(c.recv(Some(WAIT)).unwrap(), Recv::Closed);
    assert!(carol.channels().is_empty());
    // The next send commits the pending removal if the designated member has not yet.
    b.send(b"after leave").unwrap();
    assert_eq!(next_text(&a), "after leave");
    let mut members = a.members().unwrap();
    members.sort();
    assert_eq!(members, vec![b"alice".to_vec(), b"bob".to_vec()]);
    // Alice may have committed the removal while Bob was sending; a message from her epoch reaches Bob after it.
    a.send(b"seen").unwrap();
    assert_eq!(next_text(&b), "seen");
    assert_eq!(a.epoch(), b.epoch());
}

#[test]
fn rotate_key_moves_everyone_to_a_new_epoch() {
    let relay = TestRelay::start();
    let (alice, _a) = client(&relay, "alice");
    let (bob, _b) = client(&relay, "bob");
    let a = alice.create_channel("acme/team/rotate").unwrap();
    let b = add(&a, &bob);
    let before = a.epoch();
    b.rotate_key().unwrap();
    assert_eq!(b.epoch(), before + 1);
    b.send(b"new keys").unwrap();
    let m = next(&a);
    assert_eq!((m.payload.as_slice(), m.epoch), (&b"new keys"[..], before + 1));
    assert_eq!(a.epoch(), before + 1);
}
