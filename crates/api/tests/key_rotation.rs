//! The API follows its signing-key file while it runs (docs/operations.md, "Signing-key rotation"): after a
//! rotation it signs with the newest key and publishes every key; after a retirement the old key's tokens are
//! refused; a file it cannot use leaves the keys it has.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{error_code, Backend, TestApi};
use reqwest::{Method, StatusCode};
use serde_json::json;
use skytale_auth::{retire_signing_key, rotate_signing_key, KeyError};

/// The ids of the keys the API publishes, in its order (oldest first).
async fn published_kids(api: &TestApi) -> Vec<String> {
    let (status, jwks) = api.call(Method::GET, "/.well-known/jwks.json", None, None).await;
    assert_eq!(status, StatusCode::OK, "{jwks}");
    jwks["keys"].as_array().expect("keys").iter().map(|key| key["kid"].as_str().expect("kid").to_owned()).collect()
}

/// Waits (polling the JWKS, at most 30 s and 300 times) until the API publishes exactly `expected`.
async fn until_published(api: &TestApi, expected: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for _ in 0..300 {
        if published_kids(api).await == expected {
            return;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the API publishes {:?}, not {expected:?}", published_kids(api).await);
}

async fn token(api: &TestApi, api_key: &str) -> String {
    let (status, body) = api.post("/v1/tokens", api_key, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["token"].as_str().expect("token").to_owned()
}

/// The `kid` in a token's header.
fn kid_of(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().expect("a JWT");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).expect("base64url");
    serde_json::from_slice::<serde_json::Value>(&json).expect("JSON")["kid"].as_str().expect("kid").to_owned()
}

/// What the API answers a channel registration made with `token` as the credential.
async fn register_with(api: &TestApi, token: &str) -> (StatusCode, serde_json::Value) {
    api.post("/v1/channels", token, json!({"name": "acme/team/rotation"})).await
}

fn key_file(backend: &Backend) -> PathBuf {
    backend.config().key_file
}

#[tokio::test]
async fn a_rotation_and_a_retirement_take_effect_without_a_restart() {
    let backend = Backend::sqlite();
    let api = TestApi::start(&backend).await;
    let key = api.account("acme", "agent").await;
    let old_token = token(&api, &key.secret).await;
    let old_kid = kid_of(&old_token);
    assert_eq!(published_kids(&api).await, [old_kid.as_str()]);

    let new_kid = rotate_signing_key(&key_file(&backend)).unwrap().signing_kid().to_owned();
    until_published(&api, &[&old_kid, &new_kid]).await;
    let new_token = token(&api, &key.secret).await;
    assert_eq!(kid_of(&new_token), new_kid, "new tokens are signed by the newest key");
    for token in [&old_token, &new_token] {
        let (status, body) = register_with(&api, token).await;
        assert!(status.is_success(), "{status} {body}");
    }

    retire_signing_key(&key_file(&backend), &old_kid).unwrap();
    until_published(&api, &[&new_kid]).await;
    let (status, body) = register_with(&api, &old_token).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "invalid_token"), "{body}");
    assert!(register_with(&api, &new_token).await.0.is_success());
    assert_eq!(kid_of(&token(&api, &key.secret).await), new_kid);
    api.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_key_file_the_api_cannot_use_keeps_its_keys_and_the_error_names_the_file() {
    use std::os::unix::fs::PermissionsExt;
    let backend = Backend::sqlite();
    let api = TestApi::start(&backend).await;
    let key = api.account("acme", "agent").await;
    let path = key_file(&backend);
    let kid = kid_of(&token(&api, &key.secret).await);

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = api.handle.reload_signing_keys().expect_err("a world-readable key file is refused");
    assert!(matches!(error, KeyError::InsecurePermissions { .. }), "{error}");
    assert!(error.to_string().contains(&path.display().to_string()), "{error}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

    let good = std::fs::read(&path).unwrap();
    std::fs::write(&path, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
    let error = api.handle.reload_signing_keys().expect_err("a key file that is not a key is refused");
    assert!(matches!(error, KeyError::InvalidKeyFile { .. }), "{error}");
    assert!(error.to_string().contains(&path.display().to_string()), "{error}");

    // Both times the keys in effect stayed: the same key published and signing, its tokens accepted.
    assert_eq!(published_kids(&api).await, [kid.as_str()]);
    let token = token(&api, &key.secret).await;
    assert_eq!(kid_of(&token), kid);
    assert!(register_with(&api, &token).await.0.is_success());

    std::fs::write(&path, good).unwrap();
    let new_kid = rotate_signing_key(&path).unwrap().signing_kid().to_owned();
    assert_eq!(api.handle.reload_signing_keys().unwrap(), [kid.clone(), new_kid.clone()]);
    assert_eq!(published_kids(&api).await, [kid, new_kid]);
    api.handle.shutdown().await.unwrap();
}
