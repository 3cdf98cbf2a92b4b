//! `Channel::sync` against a real relay on loopback: once it returns `true`, everything the relay held when it
//! was called is in the inbox, so a zero-timeout `recv` finds it without waiting for deliveries in flight.

mod common;

use std::time::Duration;

use common::*;
use skytale_client::{Channel, Recv};

/// Everything `recv` hands out without waiting at all.
fn drain_now(channel: &Channel) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    loop {
        match channel.recv(Some(Duration::ZERO)) {
            Ok(Recv::Message(m)) => out.push((String::from_utf8(m.payload).unwrap(), m.seq)),
            Ok(Recv::Timeout) => return out,
            other => panic!("expected a message or nothing on {}, got {other:?}", channel.name()),
        }
    }
}

#[test]
fn after_sync_every_message_the_relay_held_is_in_the_inbox() {
    let relay = TestRelay::start();
    let (alice, _a) = client(&relay, "alice");
    let (bob, _b) = client(&relay, "bob");
    let a = alice.create_channel("acme/team/general").unwrap();
    let b = add(&a, &bob);

    // Nothing sent yet by anyone else: in sync at once, nothing delivered.
    assert!(b.sync(Some(WAIT)).unwrap());
    assert_eq!(b.delivered_seq().unwrap(), 0);

    for round in 0..3 {
        let sent: Vec<String> = (0..10).map(|i| format!("r{round}-m{i}")).collect();
        for text in &sent {
            a.send(text.as_bytes()).unwrap();
        }
        assert!(b.sync(Some(WAIT)).unwrap());
        let newest = b.delivered_seq().unwrap();
        let received = drain_now(&b);
        let texts: Vec<&str> = received.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts, sent.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(received.last().map(|(_, seq)| *seq), Some(newest));
        // Handed out, still counted.
        assert_eq!(b.delivered_seq().unwrap(), newest);
    }

    // The sender's own messages are applied too (its sync returns), but never land in its inbox.
    assert!(a.sync(Some(WAIT)).unwrap());
    assert_eq!(drain_now(&a), vec![]);
    assert_eq!(a.delivered_seq().unwrap(), 0);
}

#[test]
fn sync_on_a_closed_handle_or_client_returns_false() {
    let relay = TestRelay::start();
    let (alice, _a) = client(&relay, "alice");
    let a = alice.create_channel("acme/team/general").unwrap();
    let closed_handle = alice.open_channel("acme/team/general").unwrap();
    closed_handle.close();
    assert!(!closed_handle.sync(Some(WAIT)).unwrap());
    assert!(a.sync(Some(WAIT)).unwrap());
    alice.close();
    assert!(!a.sync(Some(WAIT)).unwrap());
}
