//! The relay's payload limit (`skytale-max-payload`) is on the encrypted MLS message. A payload that will not fit
//! once encrypted is refused before anything is sent, with one error naming both sizes and how much fits; a
//! frame the relay cannot take is never sent to it again, and a frame the stream keeps dying on is given up
//! after a few links. Links are counted by a proxy in front of the relay (one TCP connection per link).

mod common;

use std::time::Duration;

use common::proxy::CountingProxy;
use common::*;
use skytale_client::{Client, Error};

/// A client connected through `proxy`.
fn client_via(relay: &TestRelay, proxy: &CountingProxy, identity: &str) -> (Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(relay, dir.path(), identity);
    config.endpoint = proxy.endpoint();
    (Client::connect(config).unwrap(), dir)
}

/// The `K` of "send at most K bytes per message" in a size refusal.
fn fitting(error: &Error) -> usize {
    let text = error.to_string();
    let (_, rest) = text.split_once("send at most ").unwrap_or_else(|| panic!("no advice in {text:?}"));
    rest.split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn a_send_of_exactly_max_payload_is_one_clear_error_and_what_it_names_fits() {
    let relay = TestRelay::start();
    let proxy = CountingProxy::start(relay.addr());
    let (alice, _a) = client_via(&relay, &proxy, "alice");
    let (bob, _b) = client(&relay, "bob");
    let a = alice.create_channel("acme/x/limit").unwrap();
    let b = add(&a, &bob);
    let links = proxy.forwarded();
    let limit = alice.max_payload();
    assert_eq!(limit, skytale_relay::DEFAULT_MAX_PAYLOAD);

    let err = a.send(&vec![1u8; limit]).err().unwrap();
    assert!(matches!(err, Error::Channel(_)), "{err}");
    let text = err.to_string();
    let expected = format!(
        "channel error: payload of {limit} bytes exceeds the relay limit of {limit} bytes once encrypted (an MLS \
         message of "
    );
    assert!(text.starts_with(&expected), "{text}");
    let fits = fitting(&err);
    assert!(fits < limit, "{text}");

    // One more byte than the advice is refused the same way; the advice itself is sent and delivered.
    let err = a.send(&vec![2u8; fits + 1]).err().unwrap();
    assert!(err.to_string().starts_with(&format!("channel error: payload of {} bytes exceeds", fits + 1)), "{err}");
    assert_eq!(fitting(&err), fits);
    let err = a.send(&vec![3u8; limit + 1]).err().unwrap();
    assert_eq!(fitting(&err), fits, "{err}");
    a.send(&vec![4u8; fits]).unwrap();
    assert_eq!(next(&b).payload, vec![4u8; fits]);
    a.send(b"after").unwrap();
    assert_eq!(next_text(&b), "after");
    assert_idle(&b);
    // Nothing was resent: the link that was open before is the one still open.
    assert_eq!(proxy.forwarded(), links, "the client reconnected");
}

#[test]
fn send_many_refuses_a_payload_too_large_once_encrypted_before_sending_any() {
    let relay = TestRelay::start_with(|c| c.max_payload = 4096);
    let (alice, _a) = client(&relay, "alice");
    let (bob, _b) = client(&relay, "bob");
    let a = alice.create_channel("acme/x/batch").unwrap();
    let b = add(&a, &bob);
    let err = a.send_many(&[b"first".to_vec(), vec![0u8; 4096]]).err().unwrap();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "channel error: payload 1 of the batch (4096 bytes) exceeds the relay limit of 4096 bytes once encrypted"
        ),
        "{text}"
    );
    assert!(text.ends_with("bytes per message; nothing was sent"), "{text}");
    let fits = fitting(&err);
    a.send_many(&[b"first".to_vec(), vec![5u8; fits]]).unwrap();
    assert_eq!(next_text(&b), "first");
    assert_eq!(next(&b).payload, vec![5u8; fits]);
    assert_idle(&b);
}

#[test]
fn a_relay_restarted_with_a_smaller_limit_is_never_sent_a_frame_over_it() {
    let mut relay = TestRelay::start();
    let proxy = CountingProxy::start(relay.addr());
    let (alice, _a) = client_via(&relay, &proxy, "alice");
    let (bob, _b) = client(&relay, "bob");
    let a = alice.create_channel("acme/x/shrunk").unwrap();
    let b = add(&a, &bob);
    let links = proxy.forwarded();

    relay.stop();
    // Checked against the 1 MiB limit of the link that just died, then waiting for the next link. Sent to the
    // relay below, it would end the stream, as it would on every link after.
    let sending = {
        let a = a.clone();
        std::thread::spawn(move || a.send(&vec![6u8; 600_000]))
    };
    // Long enough for the send to be waiting for a link (its error below says so if it was not).
    std::thread::sleep(Duration::from_millis(500));
    relay.resume_with(|c| c.max_payload = 4096);
    let err = sending.join().unwrap().err().unwrap();
    let text = err.to_string();
    assert!(
        text.starts_with("channel error: payload of 600000 bytes is too large once encrypted: an MLS message of "),
        "{text}"
    );
    assert!(
        text.contains("bytes is over the relay's limit of 4096 bytes, so it was not sent; send at most "),
        "{text}"
    );
    assert_eq!(alice.max_payload(), 4096);

    // One reconnect, and the frame never went out on it: the stream it would have ended still carries the channel.
    a.send(b"after the restart").unwrap();
    assert_eq!(next_text(&b), "after the restart");
    assert_idle(&b);
    assert_eq!(proxy.forwarded(), links + 1, "links opened besides the one reconnect");
}

#[test]
fn a_batch_sent_to_a_relay_restarted_with_a_smaller_limit_ends_before_the_message_over_it() {
    let mut relay = TestRelay::start();
    let proxy = CountingProxy::start(relay.addr());
    let (alice, _a) = client_via(&relay, &proxy, "alice");
    let (bob, _b) = client(&relay, "bob");
    let a = alice.create_channel("acme/x/shrunk-batch").unwrap();
    let b = add(&a, &bob);
    let links = proxy.forwarded();

    relay.stop();
    let sending = {
        let a = a.clone();
        std::thread::spawn(move || a.send_many(&[b"before".to_vec(), vec![8u8; 600_000], b"behind".to_vec()]))
    };
    std::thread::sleep(Duration::from_millis(500));
    relay.resume_with(|c| c.max_payload = 4096);
    let err = sending.join().unwrap().err().unwrap();
    let text = err.to_string();
    assert!(text.starts_with("channel error: relay refused (payload_too_large): an MLS message of "), "{text}");
    assert!(
        text.ends_with(
            "bytes is over the relay's limit of 4096 bytes, so it was not sent (1 of the batch's 3 messages were \
             stored, the first ones in order)"
        ),
        "{text}"
    );

    // The message before the refused one is stored, the one behind it never sent.
    assert_eq!(next_text(&b), "before");
    a.send(b"after the restart").unwrap();
    assert_eq!(next_text(&b), "after the restart");
    assert_idle(&b);
    assert_eq!(proxy.forwarded(), links + 1, "links opened besides the one reconnect");
}

#[test]
fn a_frame_the_stream_keeps_ending_on_is_given_up_after_a_few_links() {
    let relay = TestRelay::start();
    // Stands for something between client and relay that cannot take large requests: it cuts the connection.
    let proxy = CountingProxy::start_with_cap(relay.addr(), Some(32 * 1024));
    let (alice, _a) = client_via(&relay, &proxy, "alice");
    let (bob, _b) = client(&relay, "bob");
    let a = alice.create_channel("acme/x/cut").unwrap();
    let b = add(&a, &bob);
    let links = proxy.forwarded();

    let err = a.send(&vec![7u8; 100_000]).err().unwrap();
    assert!(matches!(err, Error::Transport(_)), "{err}");
    assert!(
        err.to_string().starts_with("transport error: the stream to the relay ended 4 times while this request waited"),
        "{err}"
    );
    // The first link and three more, each ended by the same frame; then one more that the frame never went out on.
    a.send(b"small").unwrap();
    assert_eq!(next_text(&b), "small");
    assert_idle(&b);
    assert_eq!(proxy.forwarded(), links + 4, "links opened");

    // The same for a batch: the links it was resent on are bounded the same way.
    let links = proxy.forwarded();
    let err = a.send_many(&[vec![9u8; 100_000]]).err().unwrap();
    assert!(matches!(err, Error::Transport(_)), "{err}");
    let text = err.to_string();
    assert!(text.starts_with("transport error: the stream to the relay ended 4 times while this request"), "{text}");
    assert!(text.ends_with("(0 of the batch's 1 messages were stored, the first ones in order)"), "{text}");
    a.send(b"small again").unwrap();
    assert_eq!(next_text(&b), "small again");
    assert_idle(&b);
    assert_eq!(proxy.forwarded(), links + 4, "links opened");
}

#[test]
fn a_commit_over_the_relay_limit_is_refused_and_leaves_the_epoch_as_it_was() {
    let relay = TestRelay::start_with(|c| c.max_payload = 2048);
    let (alice, _a) = client(&relay, "alice");
    let a = alice.create_channel("acme/x/commit").unwrap();
    let joiners: Vec<(Client, tempfile::TempDir)> = (0..8).map(|i| client(&relay, &format!("agent-{i}"))).collect();
    let key_packages: Vec<Vec<u8>> = joiners.iter().map(|(c, _)| c.generate_key_package().unwrap()).collect();
    let epoch = a.epoch();

    let err = a.add_members(&key_packages).err().unwrap();
    let text = err.to_string();
    assert!(text.starts_with("channel error: the commit is "), "{text}");
    assert!(
        text.ends_with(
            "bytes, over the relay limit of 2048 bytes; commit fewer changes at once (add fewer members per call)"
        ),
        "{text}"
    );
    assert_eq!(a.epoch(), epoch);

    // The refused commit left nothing pending: one member at a time goes through, and the channel works.
    let (first, _) = &joiners[0];
    let b = first.join_channel("acme/x/commit", &a.add_member(&key_packages[0]).unwrap()).unwrap();
    assert_eq!(a.epoch(), epoch + 1);
    a.send(b"hello").unwrap();
    assert_eq!(next_text(&b), "hello");
}
