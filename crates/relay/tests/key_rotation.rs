//! A relay follows the API's signing-key rotations without a restart (docs/operations.md, "Signing-key
//! rotation"): from the JWKS URL it fetches the set again at the first token of an unknown key (once for many
//! such tokens, and at most once per interval), periodically and on demand; from the key file it reads the file
//! again when it changes (looking at once at a token of an unknown key). A source that fails leaves the keys it has. Real API (in-process, with its admin
//! listener counting the JWKS requests) and relay on loopback.

mod common;
#[path = "common/scrape.rs"]
mod scrape;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{channel, From, Stream};
use scrape::{eventually, Scrape};
use skytale_api::{Api, ApiConfig, ApiHandle};
use skytale_auth::{retire_signing_key, rotate_signing_key, KeyError, TokenIssuer};
use skytale_relay::{JwksFollow, KeyReloadError, RelayAuth, RelayHandle};

/// Longer than any of these tests: an interval that never elapses while one runs.
const NEVER: Duration = Duration::from_secs(3600);

/// A token for an account of org acme, signed by the newest key of the ring at `key_file`, as the API signs them.
fn token(key_file: &Path) -> String {
    TokenIssuer::load_or_create(key_file).unwrap().issue("acct_a", "acme", vec![]).unwrap().token
}

/// A token signed by a key the API never had.
fn strangers_token() -> String {
    TokenIssuer::ephemeral().unwrap().issue("acct_a", "acme", vec![]).unwrap().token
}

/// Whether the relay opens a stream with `token`; the refusal's message otherwise.
async fn opens(relay: &RelayHandle, token: &str) -> Result<(), String> {
    match Stream::open_with(relay.local_addr(), Some(token)).await {
        Ok(mut stream) => {
            stream.subscribe_ok(&channel("acme/team/rotation"), 1, From::Live).await;
            Ok(())
        }
        Err(status) => {
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
            Err(status.message().to_owned())
        }
    }
}

fn assert_unknown_key(refusal: Result<(), String>) {
    let message = refusal.expect_err("the token is refused");
    assert!(message.starts_with("token signed by unknown key"), "{message}");
}

struct Stack {
    api: ApiHandle,
    admin: std::net::SocketAddr,
    key_file: PathBuf,
    jwks_url: String,
    _dir: tempfile::TempDir,
}

impl Stack {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ApiConfig::in_data_dir(dir.path(), "127.0.0.1:0".parse().unwrap());
        config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        let key_file = config.key_file.clone();
        let api = Api::start(config).await.unwrap();
        let admin = api.admin_addr().unwrap();
        let jwks_url = format!("http://{}/.well-known/jwks.json", api.local_addr());
        Self { api, admin, key_file, jwks_url, _dir: dir }
    }

    /// A relay following this API's JWKS.
    async fn relay(&self, dir: &Path, refresh_interval: Duration, unknown_kid_interval: Duration) -> RelayHandle {
        let follow = JwksFollow { refresh_interval, unknown_kid_interval, ..JwksFollow::new(self.jwks_url.clone()) };
        let mut config = common::config(dir);
        config.auth = RelayAuth::jwks(follow).await.unwrap();
        common::start(config).await
    }

    /// How many times the JWKS was served.
    async fn jwks_requests(&self) -> f64 {
        let labels = [("method", "GET"), ("route", "/.well-known/jwks.json"), ("status", "200")];
        Scrape::take(self.admin).await.value("skytale_api_requests_total", &labels)
    }

    /// Rotates the ring and has the API use it now; returns the new key id.
    fn rotate(&self) -> String {
        let kid = rotate_signing_key(&self.key_file).unwrap().signing_kid().to_owned();
        assert_eq!(self.api.reload_signing_keys().unwrap().last(), Some(&kid));
        kid
    }
}

#[tokio::test]
async fn the_first_tokens_of_a_rotated_key_verify_at_once_with_one_fetch_and_unknown_keys_are_rate_limited() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let relay = stack.relay(dir.path(), NEVER, NEVER).await;
    let old_token = token(&stack.key_file);
    opens(&relay, &old_token).await.unwrap();

    stack.rotate();
    let new_token = token(&stack.key_file);
    let before = stack.jwks_requests().await;
    // Twenty streams at once with a token of the new key: each waits for the one fetch the first one started.
    let opening: Vec<_> = (0..20)
        .map(|_| {
            let (addr, token) = (relay.local_addr(), new_token.clone());
            tokio::spawn(async move { Stream::open_with(addr, Some(&token)).await.map(drop) })
        })
        .collect();
    for stream in opening {
        stream.await.unwrap().expect("a token of the new key opens a stream");
    }
    assert_eq!(stack.jwks_requests().await - before, 1.0, "one fetch for all twenty");
    // The old key's tokens still verify.
    opens(&relay, &old_token).await.unwrap();

    // Tokens of keys the API never had: refused as before, with no fetch within the interval.
    for _ in 0..10 {
        assert_unknown_key(opens(&relay, &strangers_token()).await);
    }
    assert_eq!(stack.jwks_requests().await - before, 1.0, "no fetch for unknown keys within the interval");

    relay.shutdown().await;
    stack.api.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_retired_key_is_refused_after_the_relay_fetches_again_periodically_or_on_demand() {
    let stack = Stack::start().await;
    let old_kid = TokenIssuer::load_or_create(&stack.key_file).unwrap().signing_kid().to_owned();
    let old_token = token(&stack.key_file);
    let (periodic_dir, on_demand_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let periodic = stack.relay(periodic_dir.path(), Duration::from_secs(1), NEVER).await;
    let on_demand = stack.relay(on_demand_dir.path(), NEVER, NEVER).await;

    let new_kid = stack.rotate();
    let new_token = token(&stack.key_file);
    assert_eq!(on_demand.reload_keys().await.unwrap().len(), 2);
    retire_signing_key(&stack.key_file, &old_kid).unwrap();
    assert_eq!(stack.api.reload_signing_keys().unwrap(), [new_kid.as_str()]);

    // Until it fetches again, a relay still trusts the retired key; `reload_keys` fetches now.
    opens(&on_demand, &old_token).await.unwrap();
    assert_eq!(on_demand.reload_keys().await.unwrap(), [new_kid]);
    assert_unknown_key(opens(&on_demand, &old_token).await);
    opens(&on_demand, &new_token).await.unwrap();

    // The periodic fetch brings the same without being asked.
    eventually("the periodic fetch to drop the retired key", || async {
        opens(&periodic, &old_token).await.err().filter(|message| message.starts_with("token signed by unknown key"))
    })
    .await;
    opens(&periodic, &new_token).await.unwrap();

    periodic.shutdown().await;
    on_demand.shutdown().await;
    stack.api.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_relay_whose_jwks_fetch_fails_keeps_its_keys_and_refuses_only_unknown_ones() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let relay = stack.relay(dir.path(), NEVER, Duration::ZERO).await;
    let old_token = token(&stack.key_file);
    rotate_signing_key(&stack.key_file).unwrap();
    let new_token = token(&stack.key_file);
    stack.api.shutdown().await.unwrap();

    // The refetch for the unknown key fails: the key stays unknown, the known one keeps verifying.
    assert_unknown_key(opens(&relay, &new_token).await);
    opens(&relay, &old_token).await.unwrap();
    match relay.reload_keys().await {
        Err(KeyReloadError::Jwks(error)) => assert!(error.to_string().contains(&stack.jwks_url), "{error}"),
        other => panic!("expected the fetch to fail, got {other:?}"),
    }
    opens(&relay, &old_token).await.unwrap();
    relay.shutdown().await;
}

#[tokio::test]
async fn a_relay_reading_the_key_file_follows_it_and_keeps_its_keys_when_the_file_is_unusable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("api-signing-key.pem");
    let old_kid = TokenIssuer::load_or_create(&key_file).unwrap().signing_kid().to_owned();
    let old_token = token(&key_file);
    let mut config = common::config(&dir.path().join("relay"));
    config.auth = RelayAuth::key_file(&key_file).unwrap();
    let relay = common::start(config).await;
    opens(&relay, &old_token).await.unwrap();

    // The first token of the new key makes the relay look at the file at once, without waiting for its poll.
    rotate_signing_key(&key_file).unwrap();
    let new_token = token(&key_file);
    opens(&relay, &new_token).await.unwrap();
    opens(&relay, &old_token).await.unwrap();

    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    match relay.reload_keys().await {
        Err(KeyReloadError::KeyFile(error @ KeyError::InsecurePermissions { .. })) => {
            assert!(error.to_string().contains(&key_file.display().to_string()), "{error}")
        }
        other => panic!("expected the key file to be refused, got {other:?}"),
    }
    for token in [&old_token, &new_token] {
        opens(&relay, token).await.unwrap();
    }
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    retire_signing_key(&key_file, &old_kid).unwrap();
    eventually("the relay to read the key file without the retired key", || async {
        opens(&relay, &old_token).await.err().filter(|message| message.starts_with("token signed by unknown key"))
    })
    .await;
    opens(&relay, &new_token).await.unwrap();
    relay.shutdown().await;
}
