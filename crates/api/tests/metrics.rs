//! The API's admin listener (docs/operations.md, "Health and metrics") against a real server on loopback, over
//! real HTTP: health and readiness (on PostgreSQL, a database that is gone makes it unready), and `/metrics`
//! parsed from its text: requests counted by route template and status, paths no route matches kept to one
//! series, long-polls waiting, invites redeemed and joins admitted.

mod common;
#[path = "../../relay/tests/common/scrape.rs"]
mod scrape;

use std::net::SocketAddr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::{Method, StatusCode};
use scrape::{eventually, get, Scrape};
use serde_json::json;

use common::{Backend, TestApi, POSTGRES_URL_VAR};

const CHANNEL: &str = "acme/team/general";
const REQUESTS: &str = "skytale_api_requests_total";

async fn api_with_admin(backend: &Backend) -> (TestApi, SocketAddr) {
    let api = TestApi::start_with(backend, |config| config.admin_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let admin = api.handle.admin_addr().expect("an admin listener was asked for");
    (api, admin)
}

#[tokio::test]
async fn healthz_and_readyz_answer_on_sqlite() {
    let backend = Backend::sqlite();
    let without = TestApi::start(&backend).await;
    assert_eq!(without.handle.admin_addr(), None, "no admin listener unless asked for");
    without.handle.shutdown().await.unwrap();

    let (api, admin) = api_with_admin(&backend).await;
    assert_eq!(get(admin, "/healthz").await.0, StatusCode::OK);
    let (status, body) = get(admin, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    api.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn readyz_names_a_postgresql_database_that_is_gone() {
    let Some(backend) = Backend::postgres("readyz_names_a_postgresql_database_that_is_gone").await else {
        return;
    };
    let (api, admin) = api_with_admin(&backend).await;
    let (status, body) = get(admin, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The test's own database is dropped under the running API (its connections ended): the cluster the other
    // tests share keeps running.
    let database = backend.database_url.rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
    let admin_url = std::env::var(POSTGRES_URL_VAR).unwrap();
    let mut postgres = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {database} WITH (FORCE)")))
        .execute(&mut postgres)
        .await
        .unwrap();
    let (status, body) = get(admin, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("api: the database does not answer"), "{body}");
    assert_eq!(get(admin, "/healthz").await.0, StatusCode::OK, "alive, if not ready");
    api.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn requests_are_counted_by_route_template_and_status_and_unknown_paths_add_one_series() {
    let backend = Backend::sqlite();
    let (api, admin) = api_with_admin(&backend).await;
    let key = api.account("acme", "owner").await.secret;
    let before = Scrape::take(admin).await;

    assert_eq!(api.post("/v1/tokens", &key, json!({})).await.0, StatusCode::OK);
    assert_eq!(api.post("/v1/tokens", &key, json!({})).await.0, StatusCode::OK);
    assert_eq!(api.post("/v1/tokens", "sk_live_wrong", json!({})).await.0, StatusCode::UNAUTHORIZED);
    for id in 0..20 {
        let (status, _) = api.get(format!("/v1/channels/join/join_{id}?wait=0"), &key).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    for id in 0..50 {
        let (status, _) = api.call(Method::GET, format!("/no/such/path/{id}"), None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _) = api.call(Method::from_bytes(b"BREW").unwrap(), "/v1/tokens", None, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    let after = Scrape::take(admin).await;
    let requests = |method, route, status| [("method", method), ("route", route), ("status", status)];
    assert_eq!(after.delta(&before, REQUESTS, &requests("POST", "/v1/tokens", "200")), 2.0);
    assert_eq!(after.delta(&before, REQUESTS, &requests("POST", "/v1/tokens", "401")), 1.0);
    assert_eq!(after.delta(&before, REQUESTS, &requests("GET", "/v1/channels/join/{join_id}", "404")), 20.0);
    assert_eq!(after.delta(&before, REQUESTS, &requests("GET", "unmatched", "404")), 50.0);
    assert_eq!(after.delta(&before, REQUESTS, &requests("other", "/v1/tokens", "405")), 1.0);
    let durations = "skytale_api_request_duration_seconds_count";
    assert_eq!(after.delta(&before, durations, &[("method", "POST"), ("route", "/v1/tokens")]), 3.0);
    // Five label sets, whatever the ids and paths: 20 join ids and 50 unknown paths are one series each.
    assert_eq!(after.series_named(REQUESTS).len(), before.series_named(REQUESTS).len() + 5);
    let concrete = |value: &String| value.contains("join_1") || value.contains("/no/such");
    assert!(after.series().iter().all(|(_, labels)| !labels.iter().any(|(_, value)| concrete(value))));
    api.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn long_polls_invites_redeemed_and_joins_admitted_are_counted() {
    let backend = Backend::sqlite();
    let (api, admin) = api_with_admin(&backend).await;
    let owner = api.account("acme", "owner").await.secret;
    let bob = api.account("bobcorp", "bob").await.secret;
    assert_eq!(api.post("/v1/channels", &owner, json!({ "name": CHANNEL })).await.0, StatusCode::CREATED);
    let (status, invite) = api.post("/v1/channels/invites", &owner, json!({ "channel": CHANNEL })).await;
    assert_eq!(status, StatusCode::CREATED, "{invite}");
    assert_eq!(Scrape::take(admin).await.value("skytale_api_long_polls_waiting", &[]), 0.0);

    // The owner waits for a join; the gauge shows it until Bob's join request wakes it.
    let owner_waits = tokio::spawn({
        let client = api.client.clone();
        let owner = owner.clone();
        async move { client.get(format!("/v1/channels/joins?channel={CHANNEL}&wait=60"), &owner).await }
    });
    eventually("the owner's long-poll to be counted", || async {
        (Scrape::take(admin).await.value("skytale_api_long_polls_waiting", &[]) == 1.0).then_some(())
    })
    .await;
    let body = json!({
        "token": invite["token"],
        "channel": CHANNEL,
        "identity": STANDARD.encode(b"bob"),
        "key_package": STANDARD.encode(b"key package of bob"),
    });
    let (status, joined) = api.post("/v1/channels/join", &bob, body).await;
    assert_eq!(status, StatusCode::CREATED, "{joined}");
    let (status, pending) = owner_waits.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{pending}");
    let welcome = json!({ "channel": CHANNEL, "join_ids": [joined["join_id"]], "welcome": STANDARD.encode(b"hi") });
    assert_eq!(api.post("/v1/channels/joins/welcome", &owner, welcome).await.0, StatusCode::OK);

    let scrape = Scrape::take(admin).await;
    assert_eq!(scrape.value("skytale_api_long_polls_waiting", &[]), 0.0);
    assert_eq!(scrape.value("skytale_api_invites_redeemed_total", &[]), 1.0);
    assert_eq!(scrape.value("skytale_api_joins_admitted_total", &[]), 1.0);
    api.handle.shutdown().await.unwrap();
}
