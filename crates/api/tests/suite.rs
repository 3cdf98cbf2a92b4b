//! The API suite, run against SQLite and (when `SKYTALE_TEST_POSTGRES_URL` is set) PostgreSQL.

mod common;

use std::num::NonZeroU32;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use skytale_api::ApiQuotas;
use skytale_auth::TokenVerifier;
use skytale_proto::ChannelName;

use common::{error_code, Backend, TestApi};

/// Generates `sqlite::<name>` and `postgres::<name>` tests running the scenario `<name>(Backend)`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Backend::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(backend) = super::Backend::postgres(stringify!($name)).await {
                        super::$name(backend).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    token_verifies_with_published_jwks,
    bad_credentials_are_refused_with_codes,
    revoked_key_is_refused,
    other_org_is_refused,
    single_use_invite_refuses_second_joiner_and_grants_first,
    expired_invite_is_refused,
    invite_for_another_channel_is_refused,
    five_concurrent_joiners_share_one_welcome,
    long_polls_wake_on_arrival_and_on_welcome,
    pending_join_survives_restart,
    rejected_join_is_reported_to_joiner,
    malformed_requests_are_bad_requests,
    an_account_over_its_request_rate_gets_429_with_retry_after_and_others_are_served,
    an_account_over_its_invites_per_hour_gets_429_and_others_still_invite,
);

/// Several API instances on one PostgreSQL (SQLite is one process's file, so these have no SQLite variant).
mod instances_on_one_postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_change_through_one_instance_wakes_the_long_polls_of_another() {
        if let Some(backend) = super::Backend::postgres("a_change_through_one_instance_wakes_...").await {
            super::long_polls_wake_across_instances(backend, false).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn wake_ups_across_instances_survive_a_lost_listen_connection() {
        if let Some(backend) = super::Backend::postgres("wake_ups_across_instances_survive_...").await {
            super::long_polls_wake_across_instances(backend, true).await;
        }
    }
}

const CHANNEL: &str = "acme/team/general";

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// An API with an `acme` owner account that registered `acme/team/general`; returns the owner's key.
async fn api_with_channel(backend: &Backend) -> (TestApi, String) {
    let api = TestApi::start(backend).await;
    let owner = api.account("acme", "owner").await.secret;
    let (status, body) = api.post("/v1/channels", &owner, json!({ "name": CHANNEL })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (api, owner)
}

async fn invite(api: &TestApi, key: &str, channel: &str, max_uses: u32, ttl: u64) -> String {
    let (status, body) =
        api.post("/v1/channels/invites", key, json!({ "channel": channel, "max_uses": max_uses, "ttl": ttl })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = body["token"].as_str().expect("invite token").to_owned();
    assert!(token.starts_with("skt_inv_"), "{token}");
    token
}

async fn join(api: &TestApi, key: &str, token: &str, channel: &str, who: &str) -> (StatusCode, Value) {
    let body = json!({
        "token": token,
        "channel": channel,
        "identity": b64(who.as_bytes()),
        "key_package": b64(format!("key package of {who}").as_bytes()),
    });
    api.post("/v1/channels/join", key, body).await
}

async fn token_for(api: &TestApi, key: &str) -> String {
    let (status, body) = api.post("/v1/tokens", key, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["token"].as_str().expect("token").to_owned()
}

async fn verifier(api: &TestApi) -> TokenVerifier {
    let (status, jwks) = api.call(Method::GET, "/.well-known/jwks.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    TokenVerifier::from_jwks_json(&jwks.to_string()).expect("JWKS parses")
}

async fn token_verifies_with_published_jwks(backend: Backend) {
    let api = TestApi::start(&backend).await;
    let key = api.account("acme", "agent").await;
    assert!(key.secret.starts_with("sk_live_"));

    let (status, body) = api.post("/v1/tokens", &key.secret, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = verifier(&api).await.verify(body["token"].as_str().unwrap()).expect("token verifies");
    assert_eq!(claims.sub, key.account.id);
    assert_eq!(claims.org, "acme");
    assert_eq!(Some(claims.exp), body["expires_at"].as_u64());
    assert!(claims.may_use_channel(&ChannelName::parse(CHANNEL).unwrap()));
    assert!(!claims.may_use_channel(&ChannelName::parse("globex/team/general").unwrap()));
}

async fn bad_credentials_are_refused_with_codes(backend: Backend) {
    let api = TestApi::start(&backend).await;
    let key = api.account("acme", "agent").await.secret;

    let (status, body) = api.call(Method::POST, "/v1/tokens", None, None).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "missing_credentials"));

    let forged_key = format!("sk_live_{}", "0".repeat(64));
    let (status, body) = api.post("/v1/tokens", &forged_key, json!({})).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "invalid_api_key"));

    let (status, body) = api.post("/v1/channels", "not-a-token", json!({ "name": CHANNEL })).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "invalid_token"));

    // An access token works for channel calls but cannot mint its own successor.
    let token = token_for(&api, &key).await;
    let (status, body) = api.post("/v1/channels", &token, json!({ "name": CHANNEL })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = api.post("/v1/tokens", &token, json!({})).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "api_key_required"));
}

async fn revoked_key_is_refused(backend: Backend) {
    let api = TestApi::start(&backend).await;
    let key = api.account("acme", "agent").await;
    token_for(&api, &key.secret).await;

    assert!(api.storage().revoke_api_key(&key.key_id).await.unwrap());
    let (status, body) = api.post("/v1/tokens", &key.secret, json!({})).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "revoked_api_key"));
    assert!(!api.storage().revoke_api_key(&key.key_id).await.unwrap(), "second revoke is a no-op");
}

async fn other_org_is_refused(backend: Backend) {
    let (api, _owner) = api_with_channel(&backend).await;
    let outsider = api.account("globex", "agent").await.secret;

    let (status, body) = api.post("/v1/channels", &outsider, json!({ "name": "acme/team/other" })).await;
    assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    let (status, body) = api.post("/v1/channels/invites", &outsider, json!({ "channel": CHANNEL })).await;
    assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    let (status, body) = api.get(format!("/v1/channels/joins?channel={CHANNEL}&wait=0"), &outsider).await;
    assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    let welcome = json!({ "channel": CHANNEL, "join_ids": ["join_x"], "welcome": b64(b"w") });
    let (status, body) = api.post("/v1/channels/joins/welcome", &outsider, welcome).await;
    assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
}

async fn single_use_invite_refuses_second_joiner_and_grants_first(backend: Backend) {
    let (api, owner) = api_with_channel(&backend).await;
    let bob = api.account("bobcorp", "bob").await.secret;
    let carol = api.account("carolcorp", "carol").await.secret;
    let token = invite(&api, &owner, CHANNEL, 1, 3600).await;

    let (status, body) = join(&api, &bob, &token, CHANNEL, "bob").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["join_id"].is_string());
    let (status, body) = join(&api, &carol, &token, CHANNEL, "carol").await;
    assert_eq!((status, error_code(&body)), (StatusCode::GONE, "invite_used_up"));
    // Even the redeemer cannot reuse it.
    let (status, body) = join(&api, &bob, &token, CHANNEL, "bob").await;
    assert_eq!((status, error_code(&body)), (StatusCode::GONE, "invite_used_up"));

    // Bob's next token carries the grant; Carol's does not.
    let verifier = verifier(&api).await;
    let channel = ChannelName::parse(CHANNEL).unwrap();
    let bob_claims = verifier.verify(&token_for(&api, &bob).await).unwrap();
    assert_eq!(bob_claims.channels, vec![CHANNEL.to_owned()]);
    assert!(bob_claims.may_use_channel(&channel));
    let carol_claims = verifier.verify(&token_for(&api, &carol).await).unwrap();
    assert!(!carol_claims.may_use_channel(&channel));
    // As a member, Bob may now invite others.
    invite(&api, &bob, CHANNEL, 1, 60).await;
}

async fn expired_invite_is_refused(backend: Backend) {
    let (api, owner) = api_with_channel(&backend).await;
    let bob = api.account("bobcorp", "bob").await.secret;
    let token = invite(&api, &owner, CHANNEL, 5, 1).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = join(&api, &bob, &token, CHANNEL, "bob").await;
    assert_eq!((status, error_code(&body)), (StatusCode::GONE, "invite_expired"));
}

async fn invite_for_another_channel_is_refused(backend: Backend) {
    let (api, owner) = api_with_channel(&backend).await;
    let other = "acme/team/random";
    let (status, _) = api.post("/v1/channels", &owner, json!({ "name": other })).await;
    assert_eq!(status, StatusCode::CREATED);
    let bob = api.account("bobcorp", "bob").await.secret;
    let token = invite(&api, &owner, CHANNEL, 1, 3600).await;

    let (status, body) = join(&api, &bob, &token, other, "bob").await;
    assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "invite_wrong_channel"));
    let (status, body) = join(&api, &bob, &format!("skt_inv_{}", "0".repeat(64)), CHANNEL, "bob").await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "invite_not_found"));
    // The refused attempt did not consume the use.
    let (status, body) = join(&api, &bob, &token, CHANNEL, "bob").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn five_concurrent_joiners_share_one_welcome(backend: Backend) {
    let (api, owner) = api_with_channel(&backend).await;
    let token = invite(&api, &owner, CHANNEL, 5, 3600).await;
    let mut joiners = Vec::new();
    for i in 0..6 {
        joiners.push(api.account(&format!("corp{i}"), "agent").await.secret);
    }

    // Six joiners race for five uses: exactly five get in.
    let attempts = futures::future::join_all(joiners.iter().enumerate().map(|(i, key)| {
        let (api, token, who) = (&api, &token, format!("agent-{i}"));
        async move { join(api, key, token, CHANNEL, &who).await }
    }))
    .await;
    let mut admitted = Vec::new();
    for ((status, body), key) in attempts.iter().zip(&joiners) {
        match *status {
            StatusCode::CREATED => admitted.push((key.clone(), body["join_id"].as_str().unwrap().to_owned())),
            StatusCode::GONE => assert_eq!(error_code(body), "invite_used_up"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(admitted.len(), 5);

    // Every admitted joiner waits for its Welcome.
    let waits = admitted.iter().map(|(key, join_id)| {
        let (api, key, join_id) = (&api, key.clone(), join_id.clone());
        async move { api.get(format!("/v1/channels/join/{join_id}?wait=60"), &key).await }
    });
    let waits = futures::future::join_all(waits);

    let owner_side = async {
        let (status, body) = api.get(format!("/v1/channels/joins?channel={CHANNEL}&wait=60"), &owner).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let pending: Vec<String> =
            body["joins"].as_array().unwrap().iter().map(|j| j["join_id"].as_str().unwrap().to_owned()).collect();
        let mut expected: Vec<String> = admitted.iter().map(|(_, id)| id.clone()).collect();
        let mut listed = pending.clone();
        expected.sort();
        listed.sort();
        assert_eq!(listed, expected, "all five joins are pending");
        let welcome = json!({ "channel": CHANNEL, "join_ids": pending, "welcome": b64(b"one welcome for all") });
        let (status, body) = api.post("/v1/channels/joins/welcome", &owner, welcome).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["settled"], 5);
    };
    let (results, ()) = tokio::join!(waits, owner_side);
    for (status, body) in results {
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "welcomed");
        assert_eq!(body["welcome"], b64(b"one welcome for all"));
    }
    let (_, body) = api.get(format!("/v1/channels/joins?channel={CHANNEL}&wait=0"), &owner).await;
    assert_eq!(body["joins"], json!([]), "nothing left pending");
}

async fn long_polls_wake_on_arrival_and_on_welcome(backend: Backend) {
    let (api, owner) = api_with_channel(&backend).await;
    let bob = api.account("bobcorp", "bob").await.secret;
    let token = invite(&api, &owner, CHANNEL, 1, 3600).await;

    // The owner is already waiting (wait=60, longer than the client's 30 s timeout: only a wake-up passes).
    let owner_wait = api.get(format!("/v1/channels/joins?channel={CHANNEL}&wait=60"), &owner);
    let bob_joins = async {
        let (status, body) = join(&api, &bob, &token, CHANNEL, "bob").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["join_id"].as_str().unwrap().to_owned()
    };
    let ((status, pending), join_id) = tokio::join!(owner_wait, bob_joins);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pending["joins"][0]["join_id"], join_id.as_str());
    assert_eq!(pending["joins"][0]["identity"], b64(b"bob"));
    assert_eq!(pending["joins"][0]["key_package"], b64(b"key package of bob"));

    let bob_wait = api.get(format!("/v1/channels/join/{join_id}?wait=60"), &bob);
    let owner_welcomes = async {
        let welcome = json!({ "channel": CHANNEL, "join_ids": [join_id], "welcome": b64(b"welcome bob") });
        let (status, body) = api.post("/v1/channels/joins/welcome", &owner, welcome).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    };
    let ((status, state), ()) = tokio::join!(bob_wait, owner_welcomes);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state, json!({ "status": "welcomed", "welcome": b64(b"welcome bob") }));

    // A join is settled once; another account cannot see it.
    let again = json!({ "channel": CHANNEL, "join_ids": [join_id], "welcome": b64(b"again") });
    let (status, body) = api.post("/v1/channels/joins/welcome", &owner, again).await;
    assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "join_not_pending"));
    let (status, body) = api.get(format!("/v1/channels/join/{join_id}?wait=0"), &owner).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "join_not_found"));
}

/// The owner's API instance is not the joiner's: each long-poll is woken by a change made through the other
/// (wait=60, longer than the client's 30 s timeout: only a wake-up passes). With `lose_listeners`, every LISTEN
/// connection is terminated by the server first, and the instances must reconnect and carry on.
async fn long_polls_wake_across_instances(backend: Backend, lose_listeners: bool) {
    let (owners_api, owner) = api_with_channel(&backend).await;
    let joiners_api = TestApi::start(&backend).await;
    let bob = owners_api.account("bobcorp", "bob").await.secret;
    let token = invite(&owners_api, &owner, CHANNEL, 1, 3600).await;
    if lose_listeners {
        assert_eq!(terminate_listen_connections(&backend).await, 2, "one LISTEN connection per instance");
        // Each instance connects again on its own.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while listen_connections(&backend).await < 2 {
            assert!(tokio::time::Instant::now() < deadline, "the instances did not LISTEN again");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let owner_wait = owners_api.get(format!("/v1/channels/joins?channel={CHANNEL}&wait=60"), &owner);
    let bob_joins = async {
        let (status, body) = join(&joiners_api, &bob, &token, CHANNEL, "bob").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["join_id"].as_str().unwrap().to_owned()
    };
    let ((status, pending), join_id) = tokio::join!(owner_wait, bob_joins);
    assert_eq!(status, StatusCode::OK, "{pending}");
    assert_eq!(pending["joins"][0]["join_id"], join_id.as_str());

    let bob_wait = joiners_api.get(format!("/v1/channels/join/{join_id}?wait=60"), &bob);
    let owner_welcomes = async {
        let welcome = json!({ "channel": CHANNEL, "join_ids": [join_id], "welcome": b64(b"welcome bob") });
        let (status, body) = owners_api.post("/v1/channels/joins/welcome", &owner, welcome).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    };
    let ((status, state), ()) = tokio::join!(bob_wait, owner_welcomes);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state, json!({ "status": "welcomed", "welcome": b64(b"welcome bob") }));
}

/// The backends LISTENing on the test's database.
async fn listen_connections(backend: &Backend) -> i64 {
    let query = "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'";
    sqlx::query_scalar(query).fetch_one(&mut backend.connect().await).await.expect("count LISTEN connections")
}

/// Ends every LISTEN connection to the test's database from the server side; returns how many there were.
async fn terminate_listen_connections(backend: &Backend) -> i64 {
    let query = "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND query LIKE 'LISTEN%') AS terminated";
    sqlx::query_scalar(query).fetch_one(&mut backend.connect().await).await.expect("terminate LISTEN connections")
}

async fn an_account_over_its_request_rate_gets_429_with_retry_after_and_others_are_served(backend: Backend) {
    let quotas = ApiQuotas {
        requests_per_second: NonZeroU32::new(1).unwrap(),
        request_burst: NonZeroU32::new(5).unwrap(),
        ..ApiQuotas::default()
    };
    let api = TestApi::start_with(&backend, |config| config.quotas = quotas).await;
    let flooder = api.account("acme", "flooder").await.secret;
    let other = api.account("acme", "other").await.secret;
    // The burst is 5, refilled at 1 a second: well before 100 requests, one is refused.
    let mut refused = None;
    for _ in 0..100 {
        let response = api.http.post(format!("{}/v1/tokens", api.base)).bearer_auth(&flooder).json(&json!({}));
        let response = response.send().await.expect("request");
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
    }
    let refused = refused.expect("the flooding account was never refused");
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After: {retry_after}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(error_code(&body), "quota_exceeded");
    assert!(body["error"]["message"].as_str().unwrap().contains("requests per second"), "{body}");
    // Another account has a bucket of its own.
    for _ in 0..5 {
        let (status, body) = api.post("/v1/tokens", &other, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

async fn an_account_over_its_invites_per_hour_gets_429_and_others_still_invite(backend: Backend) {
    let quotas = ApiQuotas { invites_per_hour: NonZeroU32::new(2).unwrap(), ..ApiQuotas::default() };
    let api = TestApi::start_with(&backend, |config| config.quotas = quotas).await;
    let owner = api.account("acme", "owner").await.secret;
    let (status, body) = api.post("/v1/channels", &owner, json!({ "name": CHANNEL })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let colleague = api.account("acme", "colleague").await.secret;
    invite(&api, &owner, CHANNEL, 1, 3600).await;
    invite(&api, &owner, CHANNEL, 1, 3600).await;
    let request = json!({ "channel": CHANNEL, "max_uses": 1, "ttl": 3600 });
    let (status, body) = api.post("/v1/channels/invites", &owner, request).await;
    assert_eq!((status, error_code(&body)), (StatusCode::TOO_MANY_REQUESTS, "quota_exceeded"));
    assert!(body["error"]["message"].as_str().unwrap().contains("invites per hour"), "{body}");
    // A refused invite is not counted against anyone else: a member of the same org still invites.
    invite(&api, &colleague, CHANNEL, 1, 3600).await;
}

async fn pending_join_survives_restart(backend: Backend) {
    let (api, owner) = api_with_channel(&backend).await;
    let bob = api.account("bobcorp", "bob").await.secret;
    let token = invite(&api, &owner, CHANNEL, 1, 3600).await;
    let (status, body) = join(&api, &bob, &token, CHANNEL, "bob").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let join_id = body["join_id"].as_str().unwrap().to_owned();
    let old_token = token_for(&api, &bob).await;

    // Bob is mid-wait when the API stops: his long-poll either answers "pending" at once instead of holding up
    // shutdown, or (if it raced with the shutdown) its connection is closed; either way he just asks again.
    let client = api.client.clone();
    let bob_wait =
        client.http.get(format!("{}/v1/channels/join/{join_id}?wait=60", client.base)).bearer_auth(&bob).send();
    let stop = async {
        tokio::task::yield_now().await;
        api.handle.shutdown().await.expect("clean shutdown");
    };
    let (interrupted, ()) = tokio::join!(bob_wait, stop);
    if let Ok(response) = interrupted {
        let state: Value = response.json().await.expect("JSON body");
        assert_eq!(state["status"], "pending");
    }

    let api = TestApi::start(&backend).await;
    // Same signing key: tokens issued before the restart still verify.
    verifier(&api).await.verify(&old_token).expect("pre-restart token verifies");
    let bob_wait = api.get(format!("/v1/channels/join/{join_id}?wait=60"), &bob);
    let owner_side = async {
        let (status, body) = api.get(format!("/v1/channels/joins?channel={CHANNEL}&wait=60"), &owner).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["joins"][0]["join_id"], join_id.as_str());
        let welcome = json!({ "channel": CHANNEL, "join_ids": [join_id], "welcome": b64(b"after restart") });
        let (status, body) = api.post("/v1/channels/joins/welcome", &owner, welcome).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    };
    let ((status, state), ()) = tokio::join!(bob_wait, owner_side);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state["status"], "welcomed");
    assert_eq!(state["welcome"], b64(b"after restart"));
}

async fn rejected_join_is_reported_to_joiner(backend: Backend) {
    let (api, owner) = api_with_channel(&backend).await;
    let bob = api.account("bobcorp", "bob").await.secret;
    let token = invite(&api, &owner, CHANNEL, 1, 3600).await;
    let (_, body) = join(&api, &bob, &token, CHANNEL, "bob").await;
    let join_id = body["join_id"].as_str().unwrap().to_owned();

    let bob_wait = api.get(format!("/v1/channels/join/{join_id}?wait=60"), &bob);
    let reject = api.post("/v1/channels/joins/reject", &owner, json!({ "channel": CHANNEL, "join_ids": [join_id] }));
    let ((status, state), (reject_status, _)) = tokio::join!(bob_wait, reject);
    assert_eq!(reject_status, StatusCode::OK);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state, json!({ "status": "rejected" }));

    let unknown = json!({ "channel": CHANNEL, "join_ids": ["join_nope"], "welcome": b64(b"w") });
    let (status, body) = api.post("/v1/channels/joins/welcome", &owner, unknown).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "join_not_found"));
}

async fn malformed_requests_are_bad_requests(backend: Backend) {
    let (api, owner) = api_with_channel(&backend).await;
    let token = invite(&api, &owner, CHANNEL, 1, 3600).await;

    let (status, body) = api.post("/v1/channels", &owner, json!({ "name": "acme/only-two" })).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_channel_name"));
    let (status, body) = api.post("/v1/channels", &owner, json!({ "nom": CHANNEL })).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));
    let (status, body) = api.post("/v1/channels/invites", &owner, json!({ "channel": CHANNEL, "max_uses": 0 })).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));
    let not_base64 = json!({ "token": token, "channel": CHANNEL, "identity": b64(b"x"), "key_package": "%%%" });
    let (status, body) = api.post("/v1/channels/join", &owner, not_base64).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));
    let (status, body) = api.get(format!("/v1/channels/joins?channel={CHANNEL}&wait=999"), &owner).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));
    // The refused join did not consume the invite.
    let (status, body) = join(&api, &owner, &token, CHANNEL, "owner-device-2").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
