//! The admin listener on loopback over real HTTP, with components made up for the test: readiness answers for
//! every component (a failing check and one that never answers are both named), and `/metrics` encodes every
//! registry once, the lock-free histogram with cumulative buckets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use reqwest::StatusCode;
use skytale_admin::{AdminServer, AtomicHistogram, Component, Readiness};

fn component(name: &'static str, registry: Registry, readiness: Readiness) -> Component {
    Component { name, registry: Arc::new(registry), readiness }
}

fn ready() -> Readiness {
    Arc::new(|| Box::pin(async { Ok(()) }))
}

async fn get(admin: SocketAddr, path: &str) -> (StatusCode, String) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let response = client.get(format!("http://{admin}{path}")).send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn readyz_names_every_component_whose_store_fails_or_does_not_answer() {
    let failing: Readiness = Arc::new(|| Box::pin(async { Err("the disk is gone".to_owned()) }));
    let hanging: Readiness = Arc::new(|| Box::pin(std::future::pending()));
    let components = vec![
        component("fine", Registry::default(), ready()),
        component("failing", Registry::default(), failing),
        component("hanging", Registry::default(), hanging),
    ];
    let admin = AdminServer::start("127.0.0.1:0".parse().unwrap(), components).await.unwrap();
    assert!(admin.local_addr().ip().is_loopback());
    assert_eq!(get(admin.local_addr(), "/healthz").await, (StatusCode::OK, "ok\n".to_owned()));
    let (status, body) = get(admin.local_addr(), "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(
        body["problems"],
        serde_json::json!(["failing: the disk is gone", "hanging: its store did not answer within 2s"])
    );
    admin.shutdown().await;

    let only_fine = vec![component("fine", Registry::default(), ready())];
    let admin = AdminServer::start("127.0.0.1:0".parse().unwrap(), only_fine).await.unwrap();
    assert_eq!(get(admin.local_addr(), "/readyz").await, (StatusCode::OK, r#"{"status":"ready"}"#.to_owned()));
    admin.shutdown().await;
    assert!(AdminServer::start_if(None, Vec::new()).await.unwrap().is_none(), "off unless asked for");
}

#[tokio::test]
async fn metrics_encodes_every_registry_and_the_histogram_cumulatively() {
    let mut first = Registry::with_prefix("first");
    let counter = Counter::<u64>::default();
    first.register("events", "Events", counter.clone());
    counter.inc_by(3);
    let mut second = Registry::with_prefix("second");
    let histogram = AtomicHistogram::new(&[0.001, 0.01]);
    second.register("latency_seconds", "Latency", histogram.clone());
    for millis in [0, 5, 5, 50] {
        histogram.observe(Duration::from_millis(millis));
    }
    let components = vec![component("first", first, ready()), component("second", second, ready())];
    let admin = AdminServer::start("127.0.0.1:0".parse().unwrap(), components).await.unwrap();
    let (status, text) = get(admin.local_addr(), "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let samples: Vec<&str> = text.lines().filter(|line| !line.starts_with('#')).collect();
    assert_eq!(
        samples,
        [
            "first_events_total 3",
            "second_latency_seconds_sum 0.06",
            "second_latency_seconds_count 4",
            "second_latency_seconds_bucket{le=\"0.001\"} 1",
            "second_latency_seconds_bucket{le=\"0.01\"} 3",
            "second_latency_seconds_bucket{le=\"+Inf\"} 4",
        ]
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1, "{text}");
    admin.shutdown().await;
}
