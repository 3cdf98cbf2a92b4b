//! Failover across several relay endpoints (docs/client.md, "Relay endpoints and failover"): a client configured
//! with a comma-separated list links to the first relay that answers and moves to the next when its relay goes away,
//! crashed or drained, resuming every channel from its next sequence and resending an unanswered publish with its
//! msg-id, and opening each link with its own token when the relays verify the API's (JWT auth). Two relays share
//! one log here the only way they can today: one after the other on the same data dir.

mod common;

use std::sync::mpsc;
use std::thread::JoinHandle;

use common::api::TestApi;
use common::proxy::CountingProxy;
use common::*;
use skytale_client::{Channel, Client, ClientConfig, Error};
use skytale_relay::{RelayAuth, RelayConfig};
use tempfile::TempDir;

/// Messages sent while the first relay goes away: enough that some are in flight when it does.
const DURING: usize = 200;

/// An anonymous client's settings for `endpoints` (a comma-separated list); its data_dir is set by [`client_with`].
fn client_config(endpoints: &str, identity: &str) -> ClientConfig {
    ClientConfig {
        endpoint: endpoints.to_owned(),
        data_dir: std::path::PathBuf::new(),
        identity: identity.as_bytes().to_vec(),
        api_key: None,
        api_url: None,
    }
}

/// A client with `config`, in its own data_dir.
fn client_with(config: ClientConfig) -> (Client, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Client::connect(ClientConfig { data_dir: dir.path().to_path_buf(), ..config }).unwrap(), dir)
}

/// An anonymous client of `endpoints` (a comma-separated list) in its own data_dir.
fn client_of(endpoints: &str, identity: &str) -> (Client, TempDir) {
    client_with(client_config(endpoints, identity))
}

/// Sends `during-0` .. `during-{DURING-1}` from another thread; each send must ride out the failover on its own.
fn send_during(channel: &Channel) -> JoinHandle<()> {
    let channel = channel.clone();
    std::thread::spawn(move || {
        for i in 0..DURING {
            channel.send(format!("during-{i}").as_bytes()).unwrap();
        }
    })
}

/// Every message `channel` receives from now on, until `last` (inclusive), each within [`WAIT`].
fn receive_until(channel: &Channel, last: &str) -> Vec<String> {
    let mut received = Vec::new();
    while received.last().map(String::as_str) != Some(last) {
        received.push(next_text(channel));
        assert!(received.len() <= 2 * DURING + 20, "far more than was sent: {received:?}");
    }
    received
}

fn expected(before: std::ops::Range<usize>) -> Vec<String> {
    let mut all: Vec<String> = before.map(|i| format!("before-{i}")).collect();
    all.extend((0..DURING).map(|i| format!("during-{i}")));
    all.push("after".to_owned());
    all
}

#[test]
fn an_endpoint_nobody_listens_on_is_skipped_for_the_next() {
    let relay = TestRelay::start();
    let dead = format!("http://{}", unused_addr());
    let (alice, _a) = client_of(&format!("{dead}, {}", relay.endpoint()), "alice");
    let (bob, _b) = client(&relay, "bob");
    assert!(alice.is_connected());
    let a = alice.create_channel("acme/failover/skip").unwrap();
    let b = add(&a, &bob);
    a.send(b"through the second endpoint").unwrap();
    assert_eq!(next_text(&b), "through the second endpoint");
    b.send(b"and back").unwrap();
    assert_eq!(next_text(&a), "and back");
}

#[test]
fn when_no_endpoint_answers_the_error_names_each() {
    let (first, second) = (format!("http://{}", unused_addr()), format!("http://{}", unused_addr()));
    let dir = tempfile::tempdir().unwrap();
    let config =
        ClientConfig { data_dir: dir.path().to_path_buf(), ..client_config(&format!("{first},{second}"), "alice") };
    let err = Client::connect(config).err().unwrap();
    assert!(matches!(err, Error::Transport(_)), "{err}");
    let text = err.to_string();
    let list = format!("transport error: none of the relays {first}, {second} took a stream: ");
    assert!(text.starts_with(&list), "{text}");
    assert!(text.contains(&format!("cannot reach the relay at {first} (")), "{text}");
    assert!(text.contains(&format!("; cannot reach the relay at {second} (")), "{text}");
    assert_eq!(text.matches("is it running").count(), 1, "the hint once: {text}");
}

/// The crash scenario: `make_client(endpoints, identity)` makes the clients, `adjust` sets up both relays.
fn crashed_relay_is_replaced(adjust: impl Fn(&mut RelayConfig), make_client: impl Fn(&str, &str) -> (Client, TempDir)) {
    let mut first = TestRelay::start_with(&adjust);
    // The client reaches the first relay through a forwarder: dropping it cuts every link at once, without the
    // draining notice and with publishes unanswered, which is what a client sees of a relay that crashed.
    let crashing = CountingProxy::start(first.addr());
    let second_addr = unused_addr();
    let endpoints = format!("{},http://{second_addr}", crashing.endpoint());
    let (alice, _a) = make_client(&endpoints, "alice");
    let (bob, _b) = make_client(&endpoints, "bob");
    let a = alice.create_channel("acme/failover/crash").unwrap();
    let b = add(&a, &bob);
    let (changes, reported) = mpsc::channel();
    alice.on_connection_change(Some(Box::new(move |connected| changes.send(connected).unwrap()))).unwrap();
    for i in 0..10 {
        a.send(format!("before-{i}").as_bytes()).unwrap();
    }
    let mut received: Vec<String> = (0..5).map(|_| next_text(&b)).collect();

    let sender = send_during(&a);
    drop(crashing);
    assert!(!reported.recv_timeout(WAIT).unwrap(), "the lost link is reported");
    // The second relay takes over the first one's log: the first stops (no client is left on it, so the drain ends
    // at once) and lets go of its data dir, and the second starts on it at the second endpoint.
    first.stop();
    let log_dir = first.log_dir().to_path_buf();
    let second = TestRelay::start_with(|config| {
        adjust(config);
        config.listen = second_addr;
        config.data_dir = log_dir;
    });
    sender.join().unwrap();
    assert!(reported.recv_timeout(WAIT).unwrap(), "the link on the second relay is reported");
    a.send(b"after").unwrap();
    received.extend(receive_until(&b, "after"));
    assert_eq!(received, expected(0..10));
    assert_idle(&b);
    b.send(b"reply").unwrap();
    assert_eq!(next_text(&a), "reply");
    assert!(alice.is_connected() && bob.is_connected());
    drop(second);
}

#[test]
fn a_crashed_relay_is_replaced_by_the_next_endpoint_losing_and_duplicating_nothing() {
    crashed_relay_is_replaced(|_| {}, client_of);
}

#[test]
fn with_an_api_key_each_relay_is_linked_to_with_a_token_it_accepts() {
    let api = TestApi::start();
    let key_file = api.key_file();
    let keys = [("alice", api.api_key("acme", "alice")), ("bob", api.api_key("acme", "bob"))];
    // Both relays verify the API's tokens: the second takes the client only with a token of its own link.
    crashed_relay_is_replaced(
        |config| config.auth = RelayAuth::key_file(&key_file).unwrap(),
        |endpoints, identity| {
            let key = keys.iter().find(|(name, _)| *name == identity).map(|(_, key)| key.clone());
            client_with(ClientConfig { api_key: key, api_url: Some(api.url()), ..client_config(endpoints, identity) })
        },
    );
}

#[test]
fn a_draining_relay_hands_its_clients_to_the_next_endpoint_losing_and_duplicating_nothing() {
    let mut first = TestRelay::start();
    let second_addr = unused_addr();
    let endpoints = format!("{},http://{second_addr}", first.endpoint());
    let (alice, _a) = client_of(&endpoints, "alice");
    let (bob, _b) = client_of(&endpoints, "bob");
    let a = alice.create_channel("acme/failover/drain").unwrap();
    let b = add(&a, &bob);
    for i in 0..3 {
        a.send(format!("before-{i}").as_bytes()).unwrap();
    }
    let mut received = vec![next_text(&b)];

    let sender = send_during(&a);
    // A rolling restart: the first relay drains (its clients get the draining notice and move on) and stops, and
    // its replacement starts on the same log at the second endpoint. The first never comes back.
    first.stop();
    let log_dir = first.log_dir().to_path_buf();
    let _second = TestRelay::start_with(|config| {
        config.listen = second_addr;
        config.data_dir = log_dir;
    });
    sender.join().unwrap();
    a.send(b"after").unwrap();
    received.extend(receive_until(&b, "after"));
    assert_eq!(received, expected(0..3));
    assert_idle(&b);
    b.send(b"reply").unwrap();
    assert_eq!(next_text(&a), "reply");
}
