//! Stream authentication and per-channel authorisation (`docs/protocol.md`, "Authentication and token refresh"),
//! against a real relay on loopback with JWT auth on. Tokens are signed with a real API signing key; the odd ones
//! (expired, other account, grants) are signed with that same key so only the property under test differs.

mod common;
#[path = "common/minter.rs"]
mod minter;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::mls_member::member;
use common::{channel, error_code, head_query, meta, subscription_ack, From, Stream};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use minter::Minter;
use skytale_auth::{Claims, TokenIssuer, CLOCK_LEEWAY_SECS};
use skytale_proto::meta as keys;
use skytale_relay::{JwksFollow, RelayAuth, RelayHandle};

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

async fn refused_status(relay: &RelayHandle, token: Option<&str>) -> tonic::Status {
    match Stream::open_with(relay.local_addr(), token).await {
        Ok(_) => panic!("the relay accepted a stream with token {token:?}"),
        Err(status) => status,
    }
}

fn assert_refused_naming(status: &tonic::Status, problem: &str) {
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert!(status.message().starts_with(problem), "{status:?}");
}

/// `{"alg":"none","typ":"JWT"}`, base64url: the header of an unsigned token.
const ALG_NONE_HEADER: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";

/// The token's header, claims and signature.
fn parts(token: &str) -> [&str; 3] {
    let parts: Vec<&str> = token.split('.').collect();
    parts.try_into().expect("a compact JWT")
}

fn assert_plain_words(status: &tonic::Status, expected: &str) {
    assert_refused_naming(status, expected);
    for internal in ["JSON", "variant", "ErrorKind", "Base64"] {
        assert!(!status.message().contains(internal), "library internals in {status:?}");
    }
}

#[tokio::test]
async fn every_bad_token_is_refused_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    let minter = Minter::new();
    let relay = minter.relay(&dir).await;
    let good = minter.token("acct_a", "acme", &[]);
    let [_, good_claims, good_signature] = parts(&good);

    assert_plain_words(&refused_status(&relay, None).await, "missing token");
    assert_plain_words(&refused_status(&relay, Some("not-a-jwt")).await, "malformed token: it is not a JWT");
    assert_plain_words(&refused_status(&relay, Some("a.b.c")).await, "malformed token: its header");

    // alg=none: the good token's claims, no signature.
    let unsigned = format!("{ALG_NONE_HEADER}.{good_claims}.");
    assert_plain_words(
        &refused_status(&relay, Some(&unsigned)).await,
        "token algorithm none is not accepted; expected EdDSA",
    );
    // HS256 with a secret of the attacker's choosing.
    let claims = claims_of(&minter, &good);
    let hmac =
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(b"guess")).unwrap();
    assert_plain_words(
        &refused_status(&relay, Some(&hmac)).await,
        "token algorithm HS256 is not accepted; expected EdDSA",
    );

    // Another API's key, and this API's header and signature around other claims.
    let stranger = TokenIssuer::ephemeral().unwrap().issue("acct_a", "acme", vec![]).unwrap().token;
    assert_plain_words(&refused_status(&relay, Some(&stranger)).await, "token signed by unknown key");
    let [header, _, _] = parts(&good);
    let other = minter.token("acct_a", "evil", &[]);
    let spliced = format!("{header}.{}.{good_signature}", parts(&other)[1]);
    assert_plain_words(&refused_status(&relay, Some(&spliced)).await, "bad token signature");

    let expired = minter.token_expiring_at("acct_a", "acme", now_secs() - 3600);
    assert_plain_words(&refused_status(&relay, Some(&expired)).await, "expired token: fetch a new one");

    // The same relay accepts a good token.
    let mut stream = Stream::open_with(relay.local_addr(), Some(&good)).await.unwrap();
    stream.subscribe_ok(&channel("acme/team/ok"), 1, From::Live).await;
    relay.shutdown().await;
}

/// The claims a token of `minter` carries.
fn claims_of(minter: &Minter, token: &str) -> Claims {
    minter.issuer.verifier().unwrap().verify(token).unwrap()
}

#[tokio::test]
async fn another_orgs_channel_is_refused_and_the_stream_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let minter = Minter::new();
    let relay = minter.relay(&dir).await;
    let token = minter.token("acct_a", "acme", &[]);
    let mut alice = member("alice");
    let mut stream = Stream::open_as(relay.local_addr(), &token, &alice.proof_headers(&token)).await.unwrap();
    let foreign = channel("globex/team/secret");
    let own = channel("acme/team/general");

    let ack = stream.subscribe(&foreign, 7, From::Seq(1)).await;
    assert!(!subscription_ack(&ack).success);
    assert_eq!(meta(&ack, keys::ERROR_CODE), Some("unauthorized"));
    assert!(subscription_ack(&ack).error.contains("globex/team/secret"), "{ack:?}");

    // An account creates channels in its own org only.
    let group_info = alice.create();
    let reply = stream.publish(&foreign, "m1", group_info.clone()).await;
    assert_eq!(error_code(&reply), "unauthorized");
    assert_eq!(meta(&reply, keys::MSG_ID), Some("m1"));

    // A head query is authorised like a subscription: it reveals how far the channel's log goes.
    stream.send(head_query(&foreign, Some("q1"))).await;
    let reply = stream.recv().await;
    assert_eq!(error_code(&reply), "unauthorized");
    assert_eq!(meta(&reply, keys::MSG_ID), Some("q1"));

    // Still open and usable for the org's own channels.
    assert_eq!(stream.publish_ok(&own, "m2", group_info).await, 1);
    assert_eq!(stream.publish_ok(&own, "m3", alice.application(b"y")).await, 2);
    stream.subscribe_ok(&own, 8, From::Seq(1)).await;
    assert_eq!(common::seq(&stream.deliveries(2).await[1]), 2);

    // Nothing was stored for the refused channel: its owner finds it empty.
    let owner_token = minter.token("acct_g", "globex", &[]);
    let mut owner = Stream::open_with(relay.local_addr(), Some(&owner_token)).await.unwrap();
    let ack = owner.subscribe_ok(&foreign, 1, From::Seq(1)).await;
    assert_eq!(meta(&ack, keys::CHANNEL_EPOCH), None);
    relay.shutdown().await;
}

#[tokio::test]
async fn a_grant_lets_an_account_read_a_channel_of_another_org_before_it_exists_but_not_create_it() {
    let dir = tempfile::tempdir().unwrap();
    let minter = Minter::new();
    let relay = minter.relay(&dir).await;
    let granted = channel("globex/team/shared");
    let token = minter.token("acct_a", "acme", &["globex/team/shared"]);
    let mut alice = member("alice");
    let mut stream = Stream::open_as(relay.local_addr(), &token, &alice.proof_headers(&token)).await.unwrap();
    stream.subscribe_ok(&granted, 1, From::Seq(1)).await;
    stream.send(head_query(&granted, Some("q1"))).await;
    assert_eq!(meta(&stream.recv().await, keys::HEAD_SEQ), Some("0"));
    let reply = stream.publish(&granted, "m1", alice.create()).await;
    assert_eq!(error_code(&reply), "unauthorized");
    assert!(meta(&reply, keys::ERROR).is_some_and(|e| e.contains("in its own org")), "{reply:?}");
    // The grant is for that channel only.
    let ack = stream.subscribe(&channel("globex/team/other"), 2, From::Live).await;
    assert_eq!(meta(&ack, keys::ERROR_CODE), Some("unauthorized"));
    relay.shutdown().await;
}

#[tokio::test]
async fn a_refresh_for_another_account_is_refused_and_the_old_claims_stay() {
    let dir = tempfile::tempdir().unwrap();
    let minter = Minter::new();
    let relay = minter.relay(&dir).await;
    let token = minter.token("acct_a", "acme", &[]);
    let mut stream = Stream::open_with(relay.local_addr(), Some(&token)).await.unwrap();

    let other_account = minter.token("acct_b", "globex", &[]);
    stream.send(common::token_refresh("r1", &other_account)).await;
    let reply = stream.recv().await;
    assert_eq!(meta(&reply, keys::ERROR_CODE), Some("unauthorized"));
    assert!(meta(&reply, keys::ERROR).is_some_and(|e| e.contains("acct_b")), "{reply:?}");
    assert!(meta(&reply, keys::MAX_PAYLOAD).is_some(), "{reply:?}");

    // Still acme's stream, not globex's.
    stream.subscribe_ok(&channel("acme/team/a"), 1, From::Live).await;
    let ack = stream.subscribe(&channel("globex/team/b"), 2, From::Live).await;
    assert_eq!(meta(&ack, keys::ERROR_CODE), Some("unauthorized"));

    // A forged refresh is refused the same way.
    let forged = TokenIssuer::ephemeral().unwrap().issue("acct_a", "acme", vec![]).unwrap().token;
    stream.send(common::token_refresh("r2", &forged)).await;
    let reply = stream.recv().await;
    assert_eq!(meta(&reply, keys::ERROR_CODE), Some("unauthorized"));
    assert!(meta(&reply, keys::ERROR).is_some_and(|e| e.starts_with("token signed by unknown key")), "{reply:?}");
    relay.shutdown().await;
}

/// How long a stream with an expired token is watched for deliveries it must not get.
const PAUSE_CHECK: Duration = Duration::from_secs(2);

#[tokio::test]
async fn after_expiry_requests_are_refused_and_deliveries_pause_until_a_refresh_which_also_brings_new_grants() {
    let dir = tempfile::tempdir().unwrap();
    let minter = Minter::new();
    let relay = minter.relay(&dir).await;
    let own = channel("acme/team/live");
    let granted = channel("globex/team/joined");
    let mut alice = member("alice");
    let other_token = minter.token("acct_b", "acme", &[]);
    let mut other =
        Stream::open_as(relay.local_addr(), &other_token, &alice.proof_headers(&other_token)).await.unwrap();
    assert_eq!(other.publish_ok(&own, "create", alice.create()).await, 1);

    // Valid at open thanks to the clock leeway, invalid a few seconds later.
    let exp = now_secs() + 4 - CLOCK_LEEWAY_SECS;
    let short = minter.token_expiring_at("acct_a", "acme", exp);
    let mut stream = Stream::open_as(relay.local_addr(), &short, &alice.proof_headers(&short)).await.unwrap();
    stream.subscribe_ok(&own, 1, From::Seq(2)).await;
    while now_secs() <= exp + CLOCK_LEEWAY_SECS {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let ack = stream.subscribe(&channel("acme/team/new"), 2, From::Live).await;
    assert_eq!(meta(&ack, keys::ERROR_CODE), Some("unauthorized"));
    assert!(subscription_ack(&ack).error.contains("token expired"), "{ack:?}");
    let reply = stream.publish(&own, "late", alice.application(b"x")).await;
    assert_eq!(error_code(&reply), "unauthorized");

    // What others publish meanwhile is stored, but the expired stream is not given it.
    assert_eq!(other.publish_ok(&own, "from-b", alice.application(b"hello")).await, 2);
    if let Ok(frame) = tokio::time::timeout(PAUSE_CHECK, stream.try_recv()).await {
        panic!("a stream with an expired token got {frame:?}");
    }

    // A refresh for the same account resumes the deliveries where they paused, and brings the grant the new
    // token carries.
    let fresh = minter.token("acct_a", "acme", &["globex/team/joined"]);
    stream.send(common::token_refresh("r1", &fresh)).await;
    let (mut link_reply, mut delivery) = (None, None);
    for _ in 0..2 {
        let frame = stream.recv().await;
        if common::is_delivery(&frame) {
            delivery = Some(frame);
        } else {
            link_reply = Some(frame);
        }
    }
    let link_reply = link_reply.expect("the refresh is answered");
    assert_eq!(meta(&link_reply, keys::ERROR_CODE), None, "{link_reply:?}");
    assert!(meta(&link_reply, keys::MAX_PAYLOAD).is_some(), "{link_reply:?}");
    let delivery = delivery.expect("the paused delivery arrives");
    assert_eq!((common::seq(&delivery), meta(&delivery, keys::MSG_ID)), (2, Some("from-b")));
    stream.subscribe_ok(&granted, 3, From::Live).await;
    // Create a channel this stream does not follow, so the only reply is the ack.
    let mut fresh_group = member("alice-2");
    let unfollowed = channel("acme/team/after-refresh");
    let refused = stream.publish(&unfollowed, "again", fresh_group.create()).await;
    // alice-2's GroupInfo is not signed by this stream's key (alice's).
    assert_eq!(error_code(&refused), "unauthorized");
    assert_eq!(stream.publish_ok(&unfollowed, "again-2", alice.create()).await, 1);
    relay.shutdown().await;
}

#[tokio::test]
async fn a_stream_whose_token_stays_expired_is_closed_after_the_grace_period_and_a_refreshed_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let minter = Minter::new();
    let grace = Duration::from_secs(1);
    let relay = minter.relay_with(&dir, |config| config.token_grace = grace).await;
    let ch = channel("acme/team/grace");

    let exp = now_secs() + 3 - CLOCK_LEEWAY_SECS;
    let short = minter.token_expiring_at("acct_a", "acme", exp);
    let mut alice = member("alice");
    let mut stale = Stream::open_as(relay.local_addr(), &short, &alice.proof_headers(&short)).await.unwrap();
    stale.subscribe_ok(&ch, 1, From::Live).await;
    let mut refreshed = Stream::open_as(relay.local_addr(), &short, &alice.proof_headers(&short)).await.unwrap();
    refreshed.subscribe_ok(&ch, 1, From::Live).await;
    refreshed.send(common::token_refresh("r1", &minter.token("acct_a", "acme", &[]))).await;
    assert_eq!(meta(&refreshed.recv().await, keys::ERROR_CODE), None);

    // The stale stream's last frame says why it ends, and the stream ends as unauthenticated.
    let frame = stale.recv().await;
    assert_eq!(error_code(&frame), "unauthorized");
    assert!(meta(&frame, keys::ERROR).is_some_and(|e| e.contains("not refreshed within 1s")), "{frame:?}");
    match stale.try_recv().await {
        Err(status) => assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}"),
        other => panic!("expected the stream to end, got {other:?}"),
    }
    assert!(now_secs() > exp + CLOCK_LEEWAY_SECS + grace.as_secs(), "closed before its grace period was over");

    // The refreshed stream still delivers.
    let publisher_token = minter.token("acct_b", "acme", &[]);
    let mut publisher =
        Stream::open_as(relay.local_addr(), &publisher_token, &alice.proof_headers(&publisher_token)).await.unwrap();
    assert_eq!(publisher.publish_ok(&ch, "create", alice.create()).await, 1);
    assert_eq!(publisher.publish_ok(&ch, "after", alice.application(b"still here")).await, 2);
    assert_eq!(meta(&refreshed.deliveries(2).await[1], keys::MSG_ID), Some("after"));
    relay.shutdown().await;
}

#[tokio::test]
async fn a_relay_without_auth_accepts_anonymous_streams_and_ignores_refreshes() {
    let dir = tempfile::tempdir().unwrap();
    let relay = common::start(common::config(dir.path())).await;
    let mut stream = Stream::open(relay.local_addr()).await;
    stream.send(common::token_refresh("r1", "whatever")).await;
    let reply = stream.recv().await;
    assert_eq!(meta(&reply, keys::ERROR_CODE), None, "{reply:?}");
    stream.subscribe_ok(&channel("anyorg/team/x"), 1, From::Live).await;
    relay.shutdown().await;
}

#[tokio::test]
async fn the_verifier_can_come_from_the_apis_jwks_url() {
    let api_dir = tempfile::tempdir().unwrap();
    let api_config = skytale_api::ApiConfig::in_data_dir(api_dir.path(), "127.0.0.1:0".parse().unwrap());
    let api = skytale_api::Api::start(api_config).await.unwrap();
    let api_url = format!("http://{}", api.local_addr());
    let key = skytale_api::create_account_with_key(api.storage(), "acme", "alice").await.unwrap();
    let response =
        reqwest::Client::new().post(format!("{api_url}/v1/tokens")).bearer_auth(&key.secret).send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let body: serde_json::Value = response.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_owned();

    let verifier =
        skytale_relay::fetch_verifier(&JwksFollow::new(format!("{api_url}/.well-known/jwks.json"))).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.auth = RelayAuth::jwt(verifier);
    let relay = common::start(config).await;
    let mut stream = Stream::open_with(relay.local_addr(), Some(&token)).await.unwrap();
    stream.subscribe_ok(&channel("acme/team/jwks"), 1, From::Live).await;

    match skytale_relay::fetch_verifier(&JwksFollow::new(format!("{api_url}/no-such-keys"))).await {
        Err(skytale_relay::JwksError::Status { status: 404, .. }) => {}
        Err(other) => panic!("expected HTTP 404, got {other}"),
        Ok(_) => panic!("a 404 page was taken for a key set"),
    }
    relay.shutdown().await;
    api.shutdown().await.unwrap();
}
