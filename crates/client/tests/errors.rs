//! Bad input gives the right error variant and leaves the client usable.

mod common;

use std::time::Duration;

use common::*;
use skytale_client::{Client, Error, Recv};

#[test]
fn invalid_names_are_rejected_with_the_contract_message() {
    let relay = TestRelay::start();
    let (alice, _a) = client(&relay, "alice");
    for name in ["bad-name", "a/b", "a/b/c/d", "a//c", "a/b/c!"] {
        let err = alice.create_channel(name).err().unwrap();
        assert!(matches!(err, Error::InvalidName(_)));
        assert_eq!(err.to_string(), format!("invalid channel name: {name} (expected org/namespace/service)"));
        assert!(matches!(alice.open_channel(name).err().unwrap(), Error::InvalidName(_)));
    }
    let ch = alice.create_channel("acme/x/ok").unwrap();
    ch.send(b"still works").unwrap();
}

#[test]
fn unknown_and_duplicate_channels_are_channel_errors() {
    let relay = TestRelay::start();
    let (alice, _a) = client(&relay, "alice");
    let err = alice.open_channel("acme/x/missing").err().unwrap();
    assert_eq!(err.to_string(), "channel error: unknown channel: acme/x/missing");
    alice.create_channel("acme/x/dup").unwrap();
    let err = alice.create_channel("acme/x/dup").err().unwrap();
    assert!(matches!(err, Error::Channel(_)) && err.to_string().contains("channel already exists"), "{err}");
    // Another client's group already lives under this name at the relay.
    let (bob, _b) = client(&relay, "bob");
    alice.open_channel("acme/x/dup").unwrap().send(b"x").unwrap();
    let err = bob.create_channel("acme/x/dup").err().unwrap();
    assert!(err.to_string().starts_with("channel error: channel already exists on the relay"), "{err}");
    assert!(bob.channels().is_empty());
}

#[test]
fn garbage_key_packages_and_welcomes_are_mls_errors() {
    let relay = TestRelay::start();
    let (alice, _a) = client(&relay, "alice");
    let (bob, _b) = client(&relay, "bob");
    let a = alice.create_channel("acme/x/mls").unwrap();
    let err = a.add_member(b"not a key package").err().unwrap();
    assert!(err.to_string().starts_with("MLS engine error: malformed key package"), "{err}");
    let err = bob.join_channel("acme/x/mls", b"not a welcome").err().unwrap();
    assert!(err.to_string().starts_with("MLS engine error: malformed Welcome"), "{err}");
    // A key package is not a Welcome.
    let kp = bob.generate_key_package().unwrap();
    assert!(matches!(bob.join_channel("acme/x/mls", &kp).err().unwrap(), Error::Mls(_)));
    assert!(bob.channels().is_empty());
    // Both still work.
    let b = bob.join_channel("acme/x/mls", &a.add_member(&kp).unwrap()).unwrap();
    a.send(b"ok").unwrap();
    assert_eq!(next_text(&b), "ok");
    let err = a.remove_member(b"nobody").err().unwrap();
    assert!(matches!(err, Error::Channel(_)), "{err}");
}

#[test]
fn oversize_payload_is_refused_before_sending() {
    let relay = TestRelay::start_with(|c| c.max_payload = 4096);
    let (alice, _a) = client(&relay, "alice");
    let (bob, _b) = client(&relay, "bob");
    assert_eq!(alice.max_payload(), 4096);
    let a = alice.create_channel("acme/x/big").unwrap();
    let b = add(&a, &bob);
    let err = a.send(&vec![0u8; 5000]).err().unwrap();
    assert_eq!(
        err.to_string(),
        "channel error: payload of 5000 bytes exceeds the relay limit of 4096 bytes once encrypted (an MLS message of \
         5214 bytes); send at most 3515 bytes per message"
    );
    a.send(b"small").unwrap();
    assert_eq!(next_text(&b), "small");
    assert_idle(&b);
}

#[test]
fn unreachable_relay_fails_fast_with_a_transport_error() {
    let dir = tempfile::tempdir().unwrap();
    let port = unused_addr().port();
    let config = skytale_client::ClientConfig {
        endpoint: format!("http://127.0.0.1:{port}"),
        data_dir: dir.path().to_path_buf(),
        identity: b"alice".to_vec(),
        api_key: None,
        api_url: None,
    };
    let err = Client::connect(config).err().unwrap();
    assert!(matches!(err, Error::Transport(_)), "{err}");
    assert_eq!(err.code(), "transport");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("transport error: cannot reach the relay at http://127.0.0.1:{port} (")),
        "{text}"
    );
    assert_eq!(text.matches("transport error").count(), 1, "{text}");
    assert!(text.contains("skytale dev") && text.contains("SKYTALE_RELAY"), "{text}");
}

#[test]
fn close_ends_recv_and_is_idempotent() {
    let relay = TestRelay::start();
    let (alice, _a) = client(&relay, "alice");
    let a = alice.create_channel("acme/x/close").unwrap();
    assert_eq!(a.recv(Some(Duration::from_millis(50))).unwrap(), Recv::Timeout);
    let waiting = {
        let a = a.clone();
        std::thread::spawn(move || a.recv(None))
    };
    alice.close();
    alice.close();
    assert_eq!(waiting.join().unwrap().unwrap(), Recv::Closed);
    assert!(a.send(b"x").is_err());

    // Closing one handle leaves other handles of the same channel working.
    let (bob, _b) = client(&relay, "bob");
    let first = bob.create_channel("acme/x/handles").unwrap();
    let second = bob.open_channel("acme/x/handles").unwrap();
    first.close();
    assert_eq!(first.recv(None).unwrap(), Recv::Closed);
    assert_eq!(second.recv(Some(Duration::from_millis(50))).unwrap(), Recv::Timeout);
}

#[test]
fn a_welcome_tried_on_another_channel_is_refused_and_still_joins_its_own() {
    let relay = TestRelay::start();
    let (alice, _a) = client(&relay, "alice");
    let (bob, _b) = client(&relay, "bob");
    let a = alice.create_channel("acme/x/real").unwrap();
    let welcome = a.add_member(&bob.generate_key_package().unwrap()).unwrap();
    let err = bob.join_channel("acme/x/rael", &welcome).err().unwrap();
    assert!(matches!(err, Error::Channel(_)), "{err}");
    assert!(err.to_string().contains("the Welcome is not for channel acme/x/rael"), "{err}");
    assert!(err.to_string().contains("check the channel name"), "{err}");
    assert!(bob.channels().is_empty());

    let b = bob.join_channel("acme/x/real", &welcome).unwrap();
    a.send(b"joined after all").unwrap();
    assert_eq!(next_text(&b), "joined after all");
}

#[test]
fn add_members_adds_several_in_one_commit() {
    let relay = TestRelay::start();
    let (alice, _a) = client(&relay, "alice");
    let (bob, _b) = client(&relay, "bob");
    let (carol, _c) = client(&relay, "carol");
    let a = alice.create_channel("acme/x/batch").unwrap();
    let kps = vec![bob.generate_key_package().unwrap(), carol.generate_key_package().unwrap()];
    let welcome = a.add_members(&kps).unwrap();
    assert_eq!(a.epoch(), 1);
    let b = bob.join_channel("acme/x/batch", &welcome).unwrap();
    let c = carol.join_channel("acme/x/batch", &welcome).unwrap();
    a.send(b"both").unwrap();
    assert_eq!(next_text(&b), "both");
    assert_eq!(next_text(&c), "both");
    let err = a.add_members(&[]).err().unwrap();
    assert!(matches!(err, Error::Channel(_)), "{err}");
}

#[test]
fn a_data_dir_is_one_clients_at_a_time_and_free_again_once_it_closes() {
    let relay = TestRelay::start();
    let (alice, dir) = client(&relay, "alice");
    let err = Client::connect(config(&relay, dir.path(), "alice")).err().unwrap();
    assert!(matches!(err, Error::DataDir(_)), "{err}");
    let in_use =
        format!("data_dir error: {} is in use by this process (pid {})", dir.path().display(), std::process::id());
    assert!(err.to_string().starts_with(&in_use) && err.to_string().contains("SKYTALE_DATA_DIR"), "{err}");
    alice.create_channel("acme/x/locked").unwrap().send(b"still mine").unwrap();
    alice.close();
    let again = reconnect(&relay, dir.path(), "alice");
    again.open_channel("acme/x/locked").unwrap().send(b"mine again").unwrap();
}
