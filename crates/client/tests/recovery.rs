//! Restarts: of the relay mid-stream and of a client on the same data_dir.

mod common;

use common::*;
use skytale_client::Recv;

#[test]
fn relay_restart_mid_stream_loses_and_duplicates_nothing() {
    let mut relay = TestRelay::start();
    let (alice, _a) = client(&relay, "alice");
    let (bob, _b) = client(&relay, "bob");
    let a = alice.create_channel("acme/ops/restart").unwrap();
    let b = add(&a, &bob);
    for i in 0..10 {
        a.send(format!("m{i}").as_bytes()).unwrap();
    }
    for i in 0..5 {
        assert_eq!(next_text(&b), format!("m{i}"));
    }
    relay.stop();
    // A send during the outage waits for the relay to come back.
    let sender = {
        let a = a.clone();
        std::thread::spawn(move || a.send(b"during outage").unwrap())
    };
    relay.resume();
    sender.join().unwrap();
    a.send(b"after").unwrap();
    for i in 5..10 {
        assert_eq!(next_text(&b), format!("m{i}"));
    }
    assert_eq!(next_text(&b), "during outage");
    assert_eq!(next_text(&b), "after");
    assert_idle(&b);
    b.send(b"reply").unwrap();
    assert_eq!(next_text(&a), "reply");
}

#[test]
fn the_connection_callback_reports_each_outage_and_return_then_nothing_after_close() {
    let mut relay = TestRelay::start();
    let (alice, _a) = client(&relay, "alice");
    let (changes, reported) = std::sync::mpsc::channel();
    alice.on_connection_change(Some(Box::new(move |connected| changes.send(connected).unwrap()))).unwrap();
    let within = std::time::Duration::from_secs(30);
    for _ in 0..2 {
        relay.stop();
        assert!(!reported.recv_timeout(within).unwrap());
        relay.resume();
        assert!(reported.recv_timeout(within).unwrap());
    }
    // A replaced callback is not called again; the new one is.
    let (changes, replaced_reported) = std::sync::mpsc::channel();
    alice.on_connection_change(Some(Box::new(move |connected| changes.send(connected).unwrap()))).unwrap();
    relay.stop();
    assert!(!replaced_reported.recv_timeout(within).unwrap());
    relay.resume();
    assert!(replaced_reported.recv_timeout(within).unwrap());
    assert!(reported.try_recv().is_err());
    // Closing is not an outage: the callback is dropped without a call.
    alice.close();
    assert_eq!(replaced_reported.recv_timeout(within), Err(std::sync::mpsc::RecvTimeoutError::Disconnected));
    assert!(alice.on_connection_change(None).is_err());
}

#[test]
fn client_restart_delivers_exactly_the_undelivered_messages() {
    let relay = TestRelay::start();
    let (alice, _a) = client(&relay, "alice");
    let (bob, bob_dir) = client(&relay, "bob");
    let a = alice.create_channel("acme/ops/resume").unwrap();
    let b = add(&a, &bob);
    a.send(b"one").unwrap();
    a.send(b"two").unwrap();
    assert_eq!(next_text(&b), "one");
    bob.close();
    assert_eq!(b.recv(Some(WAIT)).unwrap(), Recv::Closed);
    drop((b, bob));
    // Sent while bob is away.
    a.send(b"three").unwrap();
    a.rotate_key().unwrap();
    a.send(b"four").unwrap();

    let bob = reconnect(&relay, &data_dir(&bob_dir), "bob");
    assert_eq!(bob.channels(), vec!["acme/ops/resume".to_string()]);
    let b = bob.open_channel("acme/ops/resume").unwrap();
    assert_eq!(next_text(&b), "two");
    assert_eq!(next_text(&b), "three");
    let four = next(&b);
    assert_eq!((four.payload.as_slice(), four.epoch), (&b"four"[..], 2));
    assert_idle(&b);
    b.send(b"back").unwrap();
    assert_eq!(next_text(&a), "back");
}

#[test]
fn reopening_a_data_dir_with_another_identity_is_refused() {
    let relay = TestRelay::start();
    let (alice, dir) = client(&relay, "alice");
    alice.close();
    let err = skytale_client::Client::connect(config(&relay, dir.path(), "mallory")).err().unwrap();
    let expected = format!("data_dir error: {} belongs to identity \"alice\", not \"mallory\"", dir.path().display());
    assert!(err.to_string().starts_with(&expected), "{err}");
}

#[test]
fn a_failed_store_write_is_reported_on_recv_and_loses_nothing() {
    let relay = TestRelay::start();
    let (alice, _a) = client(&relay, "alice");
    let (bob, bob_dir) = client(&relay, "bob");
    let a = alice.create_channel("acme/ops/locked").unwrap();
    let b = add(&a, &bob);

    // Another process holds bob's database: his writes fail once SQLite's busy timeout runs out.
    let blocker = rusqlite::Connection::open(bob_dir.path().join("state.db")).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    a.send(b"while locked").unwrap();
    let reported = (0..6).find_map(|_| match b.recv(Some(WAIT)) {
        Err(e) if e.to_string().contains("cannot store delivered messages") => Some(e),
        // recv's own read of the inbox is also locked out meanwhile.
        Err(e) if e.to_string().contains("local storage failure") => None,
        other => panic!("expected a storage failure, got {other:?}"),
    });
    let reported = reported.expect("the failed write was never reported");
    assert_eq!(reported.code(), "runtime");
    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);

    assert_eq!(next_text(&b), "while locked");
    a.send(b"after").unwrap();
    assert_eq!(next_text(&b), "after");
    assert_idle(&b);
}

#[test]
fn a_channel_the_relay_no_longer_has_is_reported_lost_naming_the_data_dir() {
    let first_relay = TestRelay::start();
    let (alice, dir) = client(&first_relay, "alice");
    alice.create_channel("acme/team/reset").unwrap().send(b"before the reset").unwrap();
    alice.close();

    // A relay that never saw the channel: its data was reset.
    let fresh_relay = TestRelay::start();
    let alice = reconnect(&fresh_relay, dir.path(), "alice");
    assert_eq!(alice.channels(), vec!["acme/team/reset".to_string()]);
    let channel = alice.open_channel("acme/team/reset").unwrap();
    let lost = format!(
        "channel error: channel acme/team/reset is gone from the relay: data_dir {} holds it",
        dir.path().display()
    );
    for err in [
        channel.ensure_active().unwrap_err(),
        channel.send(b"after").unwrap_err(),
        channel.recv(Some(WAIT)).unwrap_err(),
        alice.create_channel("acme/team/reset").err().unwrap(),
    ] {
        assert!(err.to_string().starts_with(&lost), "{err}");
        assert!(err.to_string().contains("use a new data_dir"), "{err}");
    }
    // The other channels of the data_dir are unaffected.
    alice.create_channel("acme/team/new").unwrap().send(b"fine").unwrap();
}
