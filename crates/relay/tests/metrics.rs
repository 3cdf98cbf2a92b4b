//! The relay's admin listener (docs/operations.md, "Health and metrics") against a real relay on loopback, over
//! real HTTP: health and readiness (a log removed from under the relay makes it unready), and `/metrics` parsed
//! from its text while traffic runs: every counter moves exactly as the traffic did, the gauges follow what is
//! open, and the number of series does not grow with the number of channels.

mod common;
#[path = "common/minter.rs"]
mod minter;
#[path = "common/scrape.rs"]
mod scrape;

use std::net::SocketAddr;
use std::time::Duration;

use common::mls_group::new_group;
use common::{channel, config, error_code, publish, start, From, Stream};
use minter::Minter;
use reqwest::StatusCode;
use scrape::{eventually, get, Scrape};
use skytale_proto::meta::error_code as code;
use skytale_relay::{RelayConfig, RelayHandle, DB_FILE};
use tempfile::TempDir;

async fn relay_with_admin(dir: &TempDir, configure: impl FnOnce(&mut RelayConfig)) -> (RelayHandle, SocketAddr) {
    let mut config = config(dir.path());
    config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    configure(&mut config);
    let relay = start(config).await;
    let admin = relay.admin_addr().expect("an admin listener was asked for");
    (relay, admin)
}

#[tokio::test]
async fn healthz_and_readyz_answer_and_readyz_names_a_log_that_is_gone() {
    if common::skipped_on_jetstream("the log made unreachable here is the SQLite file, moved away") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let without = start(config(dir.path())).await;
    assert_eq!(without.admin_addr(), None, "no admin listener unless asked for");
    without.shutdown().await;

    let (relay, admin) = relay_with_admin(&dir, |_| {}).await;
    assert_eq!(get(admin, "/healthz").await.0, StatusCode::OK);
    let (status, body) = get(admin, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The log file moved away under the running relay: a new reader cannot open it.
    let log = dir.path().join(DB_FILE);
    let moved = dir.path().join("moved.sqlite3");
    std::fs::rename(&log, &moved).unwrap();
    let (status, body) = get(admin, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("relay: the message log does not answer"), "{body}");
    assert_eq!(get(admin, "/healthz").await.0, StatusCode::OK, "alive, if not ready");

    std::fs::rename(&moved, &log).unwrap();
    let (status, body) = get(admin, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    relay.shutdown().await;
}

#[tokio::test]
async fn counters_and_gauges_follow_publishes_refusals_deliveries_and_open_streams() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, admin) = relay_with_admin(&dir, |_| {}).await;
    let ch = channel("acme/team/general");
    let mut group = new_group(false);
    let mut alice = Stream::open(relay.local_addr()).await;
    let mut bob = Stream::open(relay.local_addr()).await;
    let mut sender = Stream::open(relay.local_addr()).await;
    alice.subscribe_ok(&ch, 1, From::Live).await;
    bob.subscribe_ok(&ch, 1, From::Live).await;

    let before = Scrape::take(admin).await;
    assert_eq!(before.value("skytale_relay_streams_open", &[]), 3.0);
    assert_eq!(before.value("skytale_relay_subscriptions_open", &[]), 2.0);

    let messages: Vec<(String, Vec<u8>)> =
        (0..100).map(|i| (format!("m{i}"), group.application(format!("message {i}").as_bytes()))).collect();
    sender.publish_all(&ch, messages).await;
    let deliveries = [alice.deliveries(100).await, bob.deliveries(100).await];
    let delivered_bytes: usize = deliveries.iter().flatten().map(prost::Message::encoded_len).sum();

    // A message of an epoch the channel has not reached (its commit was never published) is refused.
    group.commit();
    let refusal = sender.publish(&ch, "stale", group.application(b"too early")).await;
    assert_eq!(error_code(&refusal), code::STALE_EPOCH);

    let after = Scrape::take(admin).await;
    assert_eq!(after.delta(&before, "skytale_relay_publishes_accepted_total", &[]), 100.0);
    assert_eq!(after.delta(&before, "skytale_relay_publishes_refused_total", &[("code", "stale_epoch")]), 1.0);
    assert_eq!(after.delta(&before, "skytale_relay_publishes_refused_total", &[("code", "bad_message")]), 0.0);
    assert_eq!(after.delta(&before, "skytale_relay_deliveries_total", &[]), 200.0);
    assert_eq!(after.delta(&before, "skytale_relay_delivered_bytes_total", &[]), delivered_bytes as f64);
    // Every append the log writer decided, the refused one included, has its latency recorded.
    assert_eq!(after.delta(&before, "skytale_relay_append_latency_seconds_count", &[]), 101.0);
    assert_eq!(after.value("skytale_relay_append_latency_seconds_bucket", &[("le", "+Inf")]), 101.0);
    assert_eq!(
        after.delta(&before, "skytale_relay_catch_up_reads_total", &[]),
        0.0,
        "live deliveries come from the cache"
    );

    // Gauges follow streams and subscriptions as they end.
    drop(alice);
    bob.send(common::unsubscribe(&ch, 0)).await;
    let gone = eventually("the closed stream and the unsubscription to be counted", || async {
        let now = Scrape::take(admin).await;
        (now.value("skytale_relay_streams_open", &[]) == 2.0
            && now.value("skytale_relay_subscriptions_open", &[]) == 0.0)
            .then_some(now)
    })
    .await;
    assert_eq!(gone.value("skytale_relay_auth_failures_total", &[("reason", "missing_token")]), 0.0);
    relay.shutdown().await;
}

#[tokio::test]
async fn a_subscriber_behind_the_cache_reads_the_log_and_retention_removals_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let ch = channel("acme/team/general");
    let mut group = new_group(false);
    let relay = start(config(dir.path())).await;
    let mut sender = Stream::open(relay.local_addr()).await;
    let messages = (0..20).map(|i| (format!("m{i}"), group.application(b"stored"))).collect();
    sender.publish_all(&ch, messages).await;
    drop(sender);
    relay.shutdown().await;

    // After a restart the channel's feed holds no recent messages: catching up from seq 1 reads SQLite.
    let (relay, admin) = relay_with_admin(&dir, |_| {}).await;
    let before = Scrape::take(admin).await;
    assert_eq!(before.value("skytale_relay_catch_up_reads_total", &[]), 0.0);
    let mut reader = Stream::open(relay.local_addr()).await;
    reader.subscribe_ok(&ch, 1, From::Seq(1)).await;
    reader.deliveries(20).await;
    let after = Scrape::take(admin).await;
    assert!(after.value("skytale_relay_catch_up_reads_total", &[]) >= 1.0);
    assert_eq!(after.value("skytale_relay_deliveries_total", &[]), 20.0);
    drop(reader);
    relay.shutdown().await;

    // With 1 s retention the 20 messages are removed (each counted once) by the startup sweep or the next one; the
    // JetStream log keeps a channel's newest message, its head (docs/relay.md, "The JetStream log").
    let removed = if common::store_is_jetstream() { 19.0 } else { 20.0 };
    let (relay, admin) = relay_with_admin(&dir, |config| config.retention = Duration::from_secs(1)).await;
    eventually(&format!("retention to count the {removed} removed messages"), || async {
        let now = Scrape::take(admin).await;
        (now.value("skytale_relay_retention_removed_messages_total", &[]) == removed).then_some(())
    })
    .await;
    relay.shutdown().await;
}

#[tokio::test]
async fn deliveries_that_wait_for_a_full_queue_or_budget_are_counted() {
    for (budget, waited_for) in [(64 << 10, "in_flight_budget"), (64 << 20, "stream_queue")] {
        let dir = tempfile::tempdir().unwrap();
        let (relay, admin) = relay_with_admin(&dir, |config| {
            config.max_in_flight_per_connection = budget;
            config.max_in_flight_per_account = budget;
        })
        .await;
        let ch = channel("acme/team/general");
        let mut group = new_group(false);
        // Subscribed, and reading nothing until the relay has had to wait.
        let mut idle = Stream::open(relay.local_addr()).await;
        idle.subscribe_ok(&ch, 1, From::Live).await;
        let mut sender = Stream::open(relay.local_addr()).await;
        let messages = (0..400).map(|i| (format!("m{i}"), group.application(&[7u8; 16 << 10]))).collect();
        sender.publish_all(&ch, messages).await;
        eventually(&format!("a delivery to wait for the {waited_for}"), || async {
            let now = Scrape::take(admin).await;
            (now.value("skytale_relay_delivery_waits_total", &[("for", waited_for)]) >= 1.0).then_some(())
        })
        .await;
        idle.deliveries(400).await;
        relay.shutdown().await;
    }
}

#[tokio::test]
async fn auth_failures_are_counted_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let minter = Minter::new();
    let relay = minter.relay_with(&dir, |config| config.admin_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let admin = relay.admin_addr().unwrap();
    assert!(Stream::open_with(relay.local_addr(), None).await.is_err());
    assert!(Stream::open_with(relay.local_addr(), Some("not-a-jwt")).await.is_err());
    let forged = skytale_auth::TokenIssuer::ephemeral().unwrap().issue("acct_a", "acme", vec![]).unwrap().token;
    assert!(Stream::open_with(relay.local_addr(), Some(&forged)).await.is_err());
    let expired = minter.token_expiring_at("acct_a", "acme", 1_000_000);
    assert!(Stream::open_with(relay.local_addr(), Some(&expired)).await.is_err());
    // An in-band refresh with a token of another account.
    let mut stream = Stream::open_with(relay.local_addr(), Some(&minter.token("acct_a", "acme", &[]))).await.unwrap();
    stream.send(common::token_refresh("r1", &minter.token("acct_b", "acme", &[]))).await;
    stream.recv().await;

    let scrape = Scrape::take(admin).await;
    for (reason, count) in [
        ("missing_token", 1.0),
        ("malformed_token", 1.0),
        ("forged_token", 1.0),
        ("expired_token", 1.0),
        ("other_account", 1.0),
        ("bad_member_proof", 0.0),
    ] {
        assert_eq!(scrape.value("skytale_relay_auth_failures_total", &[("reason", reason)]), count, "{reason}");
    }
    relay.shutdown().await;
}

#[tokio::test]
async fn the_number_of_series_does_not_grow_with_1000_channels() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, admin) = relay_with_admin(&dir, |_| {}).await;
    let mut group = new_group(false);
    let mut stream = Stream::open(relay.local_addr()).await;
    stream.publish_ok(&channel("acme/team/c0"), "first", group.application(b"x")).await;
    let before = Scrape::take(admin).await;

    let sender = stream.sender();
    let frames: Vec<_> =
        (1..=1000).map(|i| publish(&channel(&format!("org{i}/team/c{i}")), "m", group.application(b"x"))).collect();
    let feeding = tokio::spawn(async move {
        for frame in frames {
            sender.send(frame).await;
        }
    });
    for _ in 0..1000 {
        common::ack_seq(&stream.recv().await);
    }
    feeding.await.unwrap();
    let mut subscriber = Stream::open(relay.local_addr()).await;
    for i in 1..=100 {
        subscriber.subscribe_ok(&channel(&format!("org{i}/team/c{i}")), i, From::Live).await;
    }

    let after = Scrape::take(admin).await;
    assert_eq!(after.delta(&before, "skytale_relay_publishes_accepted_total", &[]), 1000.0);
    assert_eq!(after.value("skytale_relay_subscriptions_open", &[]), 100.0);
    assert_eq!(after.series(), before.series(), "the same series, whatever the channels and orgs");
    relay.shutdown().await;
}
