//! `https://` relay and API endpoints, trusted through a private CA in `SKYTALE_CA_FILE`.
//!
//! One test only: it changes the process environment, which no other test in this binary may observe.

mod common;

use std::time::Duration;

use common::api::TestApi;
use common::tls::{PrivateCa, TlsProxy};
use common::*;
use skytale_client::{Client, ClientConfig, Error, CA_FILE_ENV};

fn tls_config(
    relay: &TlsProxy,
    api: &TlsProxy,
    dir: &std::path::Path,
    identity: &str,
    api_key: String,
) -> ClientConfig {
    ClientConfig {
        endpoint: relay.url(),
        data_dir: dir.to_path_buf(),
        identity: identity.as_bytes().to_vec(),
        api_key: Some(api_key),
        api_url: Some(api.url()),
    }
}

#[test]
fn relay_and_api_over_tls_with_a_private_ca() {
    let relay = TestRelay::start();
    let api = TestApi::start();
    let ca = PrivateCa::new();
    let relay_tls = TlsProxy::start(&ca, relay.addr());
    let api_tls = TlsProxy::start(&ca, api.addr());
    let (alice_key, bob_key) = (api.api_key("acme", "alice"), api.api_key("globex", "bob"));
    let (alice_dir, bob_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    // Without the private CA neither certificate is trusted.
    std::env::remove_var(CA_FILE_ENV);
    let anonymous = ClientConfig {
        api_key: None,
        api_url: None,
        ..tls_config(&relay_tls, &api_tls, alice_dir.path(), "alice", String::new())
    };
    let err = Client::connect(anonymous).err().unwrap();
    assert!(matches!(err, Error::Transport(_)) && err.to_string().contains("UnknownIssuer"), "{err}");
    let err =
        Client::connect(tls_config(&relay_tls, &api_tls, alice_dir.path(), "alice", alice_key.clone())).err().unwrap();
    assert!(matches!(err, Error::Transport(_)) && err.to_string().contains("UnknownIssuer"), "{err}");

    std::env::set_var(CA_FILE_ENV, &ca.ca_file);
    let alice = Client::connect(tls_config(&relay_tls, &api_tls, alice_dir.path(), "alice", alice_key)).unwrap();
    let bob = Client::connect(tls_config(&relay_tls, &api_tls, bob_dir.path(), "bob", bob_key)).unwrap();
    let a = alice.create_channel("acme/secure/chat").unwrap();
    let token = alice.invite("acme/secure/chat", 1, Duration::from_secs(600)).unwrap();
    let b = bob.join_with_token("acme/secure/chat", &token, Duration::from_secs(30)).unwrap();
    a.send(b"over tls").unwrap();
    assert_eq!(next_text(&b), "over tls");

    // A file that is not PEM is refused at connect, not silently ignored.
    let bogus = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bogus.path(), b"not a certificate").unwrap();
    std::env::set_var(CA_FILE_ENV, bogus.path());
    let err = Client::connect(config(&relay, tempfile::tempdir().unwrap().path(), "carol")).err().unwrap();
    assert!(err.to_string().contains(CA_FILE_ENV), "{err}");
    std::env::remove_var(CA_FILE_ENV);
}
