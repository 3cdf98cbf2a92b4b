//! The client against a relay with JWT auth on (docs/protocol.md, "Authentication and token refresh"): a real
//! in-process API server issues the tokens and the relay verifies them with the API's signing key, as
//! `skytale dev` runs them.

mod common;

use std::path::Path;
use std::time::Duration;

use common::next_text;
use skytale_api::{Api, ApiConfig, ApiHandle, NewApiKey};
use skytale_client::{Client, ClientConfig, Error};
use skytale_relay::{Relay, RelayAuth, RelayConfig, RelayHandle};
use tempfile::TempDir;

const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
const HOUR: Duration = Duration::from_secs(3600);

/// An API server and a JWT relay trusting its key, on loopback, with their own runtime.
struct AuthStack {
    runtime: tokio::runtime::Runtime,
    api: Option<ApiHandle>,
    relay: Option<RelayHandle>,
    _dir: TempDir,
}

impl AuthStack {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let api_config = ApiConfig::in_data_dir(&dir.path().join("api"), "127.0.0.1:0".parse().unwrap());
        let key_file = api_config.key_file.clone();
        let api = runtime.block_on(Api::start(api_config)).unwrap();
        let mut relay_config = RelayConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().join("relay"));
        relay_config.auth = RelayAuth::key_file(&key_file).unwrap();
        let relay = runtime.block_on(Relay::start(relay_config)).unwrap();
        Self { runtime, api: Some(api), relay: Some(relay), _dir: dir }
    }

    fn api(&self) -> &ApiHandle {
        self.api.as_ref().expect("API running")
    }

    fn key(&self, org: &str, account: &str) -> NewApiKey {
        self.runtime.block_on(skytale_api::create_account_with_key(self.api().storage(), org, account)).unwrap()
    }

    fn revoke(&self, key: &NewApiKey) {
        assert!(self.runtime.block_on(self.api().storage().revoke_api_key(&key.key_id)).unwrap());
    }

    fn config(&self, dir: &Path, identity: &str, api_key: &str) -> ClientConfig {
        let relay = self.relay.as_ref().expect("relay running");
        ClientConfig {
            endpoint: format!("http://{}", relay.local_addr()),
            data_dir: dir.to_path_buf(),
            identity: identity.as_bytes().to_vec(),
            api_key: Some(api_key.to_owned()),
            api_url: Some(format!("http://{}", self.api().local_addr())),
        }
    }

    /// A client in its own data_dir (kept alive by the returned TempDir).
    fn client(&self, identity: &str, api_key: &str) -> (Client, TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let client = Client::connect(self.config(dir.path(), identity, api_key)).unwrap();
        (client, dir)
    }
}

impl Drop for AuthStack {
    fn drop(&mut self) {
        if let Some(relay) = self.relay.take() {
            self.runtime.block_on(relay.shutdown());
        }
        if let Some(api) = self.api.take() {
            self.runtime.block_on(api.shutdown()).unwrap();
        }
    }
}

fn assert_auth_error(err: &Error, needle: &str) {
    assert!(matches!(err, Error::Auth(_)), "{err}");
    assert!(err.to_string().starts_with("auth error: ") && err.to_string().contains(needle), "{err}");
}

#[test]
fn a_bad_api_key_is_an_auth_error() {
    let stack = AuthStack::start();
    let key = stack.key("acme", "alice");
    let dir = tempfile::tempdir().unwrap();
    let err = Client::connect(stack.config(dir.path(), "mallory", &format!("{}x", key.secret))).err().unwrap();
    assert_auth_error(&err, "invalid_api_key");
}

#[test]
fn a_client_without_an_api_key_is_told_to_configure_one() {
    let stack = AuthStack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = ClientConfig { api_key: None, api_url: None, ..stack.config(dir.path(), "alice", "unused") };
    let err = Client::connect(config).err().unwrap();
    assert_auth_error(
        &err,
        "requires an API key: pass api_key and api_url (or set SKYTALE_API_KEY and SKYTALE_API_URL",
    );
}

#[test]
fn a_member_added_from_another_org_by_welcome_needs_no_grant_and_a_stranger_gets_nothing() {
    let stack = AuthStack::start();
    let (alice, _a) = stack.client("alice", &stack.key("acme", "alice").secret);
    let (bob, _b) = stack.client("bob", &stack.key("globex", "bob").secret);
    let (carol, _c) = stack.client("carol", &stack.key("globex", "carol").secret);
    let a = alice.create_channel("acme/team/private").unwrap();
    a.send(b"before bob").unwrap();

    // Membership is the group's: the Welcome admits bob's key, whatever his org (docs/protocol.md, "Membership").
    let welcome = a.add_member(&bob.generate_key_package().unwrap()).unwrap();
    let b = bob.join_channel("acme/team/private", &welcome).unwrap();
    a.send(b"for the members").unwrap();
    assert_eq!(next_text(&b), "for the members");
    b.send(b"bob here").unwrap();
    assert_eq!(next_text(&a), "bob here");

    // A Welcome meant for someone else does not let carol in: her key is not in the group.
    let err = carol.join_channel("acme/team/private", &welcome).err().unwrap();
    assert!(err.to_string().contains("key package"), "{err}");
    assert!(carol.channels().is_empty());
}

#[test]
fn invite_and_join_with_token_work_through_an_auth_on_relay() {
    let stack = AuthStack::start();
    let (alice, _a) = stack.client("alice", &stack.key("acme", "alice").secret);
    let (bob, _b) = stack.client("bob", &stack.key("globex", "bob").secret);
    let a = alice.create_channel("acme/team/invited").unwrap();
    let token = alice.invite("acme/team/invited", 1, HOUR).unwrap();

    // Bob's stream opened with a token for globex only; the grant arrives with the refreshed token.
    let b = bob.join_with_token("acme/team/invited", &token, JOIN_TIMEOUT).unwrap();
    a.send(b"welcome bob").unwrap();
    b.send(b"thanks alice").unwrap();
    assert_eq!(next_text(&b), "welcome bob");
    assert_eq!(next_text(&a), "thanks alice");
}

#[test]
fn a_revoked_key_cannot_get_a_new_token() {
    let stack = AuthStack::start();
    let key = stack.key("acme", "alice");
    let (alice, alice_dir) = stack.client("alice", &key.secret);
    let a = alice.create_channel("acme/team/revoked").unwrap();
    stack.revoke(&key);

    // The token alice already holds stays valid until it expires (at most 15 minutes)...
    a.send(b"still valid").unwrap();
    alice.close();
    // ...but a new connection needs a new token, which the API no longer issues.
    let err = Client::connect(stack.config(alice_dir.path(), "alice", &key.secret)).err().unwrap();
    assert_auth_error(&err, "revoked_api_key");
}
