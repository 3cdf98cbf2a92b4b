//! `https://` relay and API endpoints served by the real servers over TLS, trusted through a private CA in
//! `SKYTALE_CA_FILE`: no CA or another CA is refused with a transport error naming the certificate problem, the
//! right one carries a conversation, and a relay certificate renewed on disk by another CA reaches new clients
//! (trusting the new CA) while connected ones go on.
//!
//! One test only: it changes the process environment, which no other test in this binary may observe.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::api::TestApi;
use common::*;
use skytale_client::{Client, ClientConfig, Error, CA_FILE_ENV};
use skytale_relay::TlsFiles;
use skytale_tls_server::LocalCa;

/// Anonymous (no API) client settings for the relay at `relay_url`.
fn anonymous(relay_url: &str, dir: &Path) -> ClientConfig {
    ClientConfig {
        endpoint: relay_url.to_owned(),
        data_dir: dir.to_path_buf(),
        identity: b"anonymous".to_vec(),
        api_key: None,
        api_url: None,
    }
}

fn with_api(relay_url: &str, api_url: &str, dir: &Path, identity: &str, api_key: &str) -> ClientConfig {
    ClientConfig {
        identity: identity.as_bytes().to_vec(),
        api_key: Some(api_key.to_owned()),
        api_url: Some(api_url.to_owned()),
        ..anonymous(relay_url, dir)
    }
}

/// `connect`'s error, which must be a transport error naming the certificate problem and what to do.
fn assert_untrusted(config: ClientConfig) {
    let err = Client::connect(config).err().expect("an untrusted certificate is refused");
    let text = err.to_string();
    assert!(matches!(err, Error::Transport(_)), "{text}");
    assert!(text.contains("invalid peer certificate: UnknownIssuer") && text.contains(CA_FILE_ENV), "{text}");
    assert!(!text.contains("is it running"), "a certificate problem is not an unreachable server: {text}");
}

/// A copy of `files` in `dir`, checked for changes every 50 ms.
fn copy_files(files: &TlsFiles, dir: &Path) -> TlsFiles {
    let copy = |from: &PathBuf, name: &str| {
        let to = dir.join(name);
        std::fs::copy(from, &to).unwrap();
        to
    };
    TlsFiles {
        cert: copy(&files.cert, "cert.pem"),
        key: copy(&files.key, "key.pem"),
        reload_interval: Duration::from_millis(50),
    }
}

/// Replaces the files in `to` by those of `from`, each renamed into place as renewal tools do.
fn renew(from: &TlsFiles, to: &TlsFiles) {
    for (from, to) in [(&from.key, &to.key), (&from.cert, &to.cert)] {
        let temporary = to.with_extension("new");
        std::fs::copy(from, &temporary).unwrap();
        std::fs::rename(&temporary, to).unwrap();
    }
}

#[test]
fn relay_and_api_over_tls_with_a_private_ca() {
    let (ca_dir, other_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ca, other) =
        (LocalCa::load_or_create(ca_dir.path()).unwrap(), LocalCa::load_or_create(other_dir.path()).unwrap());
    // The relay's own copy of the certificate, renewed below; the API keeps the original.
    let relay_files_dir = tempfile::tempdir().unwrap();
    let relay_files = copy_files(&ca.server, relay_files_dir.path());
    let relay = TestRelay::start_with(|config| config.tls = Some(relay_files.clone()));
    let api = TestApi::start_with(|config| config.tls = Some(ca.server.clone()));
    let relay_url = format!("https://127.0.0.1:{}", relay.addr().port());
    let api_url = format!("https://127.0.0.1:{}", api.addr().port());
    let (alice_key, bob_key) = (api.api_key("acme", "alice"), api.api_key("globex", "bob"));
    let (alice_dir, bob_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    // Without the private CA, or with another one, neither certificate is trusted.
    let refused_dir = tempfile::tempdir().unwrap();
    for ca_file in [None, Some(&other.ca_file)] {
        match ca_file {
            None => std::env::remove_var(CA_FILE_ENV),
            Some(ca_file) => std::env::set_var(CA_FILE_ENV, ca_file),
        }
        // Anonymous: the relay is the first server asked; with an API key, the API is.
        assert_untrusted(anonymous(&relay_url, refused_dir.path()));
        assert_untrusted(with_api(&relay_url, &api_url, alice_dir.path(), "alice", &alice_key));
    }

    std::env::set_var(CA_FILE_ENV, &ca.ca_file);
    let alice = Client::connect(with_api(&relay_url, &api_url, alice_dir.path(), "alice", &alice_key)).unwrap();
    // Bob lists a relay that is not there before the real one: each endpoint gets the TLS settings for its URL,
    // and the one that answers carries his link (and the token refresh of his join).
    let bob_endpoints = format!("https://{}, {relay_url}", unused_addr());
    let bob = Client::connect(with_api(&bob_endpoints, &api_url, bob_dir.path(), "bob", &bob_key)).unwrap();
    let a = alice.create_channel("acme/secure/chat").unwrap();
    let token = alice.invite("acme/secure/chat", 1, Duration::from_secs(600)).unwrap();
    let b = bob.join_with_token("acme/secure/chat", &token, Duration::from_secs(30)).unwrap();
    a.send(b"over tls").unwrap();
    assert_eq!(next_text(&b), "over tls");

    // The relay's certificate is renewed by another CA. New clients trusting it get in once the relay has read
    // the files (at most 200 tries, 50 ms apart).
    renew(&other.server, &relay_files);
    std::env::set_var(CA_FILE_ENV, &other.ca_file);
    let mut renewed = None;
    for _ in 0..200 {
        let dir = tempfile::tempdir().unwrap();
        if let Ok(client) = Client::connect(anonymous(&relay_url, dir.path())) {
            renewed = Some((client, dir));
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (renewed, _renewed_dir) = renewed.expect("a client trusting the new CA connects once the relay reloaded");
    renewed.close();
    // Alice and Bob trust only the first CA: their links, handshaken before the renewal, carry on.
    std::env::set_var(CA_FILE_ENV, &ca.ca_file);
    assert_untrusted(anonymous(&relay_url, tempfile::tempdir().unwrap().path()));
    a.send(b"after the renewal").unwrap();
    assert_eq!(next_text(&b), "after the renewal");
    b.send(b"and back").unwrap();
    assert_eq!(next_text(&a), "and back");
    alice.close();
    bob.close();

    // A relay that is not there is told apart from one whose certificate is not trusted.
    let closed_port = unused_addr().port();
    let err =
        Client::connect(anonymous(&format!("https://127.0.0.1:{closed_port}"), refused_dir.path())).err().unwrap();
    assert!(matches!(err, Error::Transport(_)) && err.to_string().contains("is it running"), "{err}");
    assert!(!err.to_string().contains(CA_FILE_ENV), "{err}");

    // A file that is not PEM is refused at connect, not silently ignored.
    let bogus = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bogus.path(), b"not a certificate").unwrap();
    std::env::set_var(CA_FILE_ENV, bogus.path());
    let err = Client::connect(anonymous(&relay_url, tempfile::tempdir().unwrap().path())).err().unwrap();
    assert!(err.to_string().contains(CA_FILE_ENV), "{err}");
    std::env::remove_var(CA_FILE_ENV);
}
