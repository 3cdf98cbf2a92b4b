//! Graceful drain (docs/operations.md, "Graceful drain") against a real relay on loopback: a stream open when the
//! drain begins gets the acks of every publish the relay took, in order, then the `draining` notice, and the log
//! holds exactly what was acknowledged; while the drain waits on a client that does not read, new connections
//! are refused, `/readyz` answers 503 and `skytale_relay_draining` is 1; at the drain timeout that client is cut
//! and the relay stops.

mod common;
#[path = "common/scrape.rs"]
mod scrape;

use std::time::Duration;

use common::mls_group::new_group;
use common::{ack_seq, channel, config, error_code, head, is_delivery, is_error, meta, publish, start, From, Stream};
use reqwest::StatusCode;
use scrape::{eventually, get, Scrape};
use skytale_proto::meta::{self as keys, error_code as code};
use tonic::Code;

/// Guard against a hung test: how long a shutdown may take here, far beyond any drain timeout the tests set.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(60);

/// Publishes pipelined before the drain begins: more than the relay answers before the test reacts to the first ack.
const PIPELINED: usize = 500;

/// The HTTP/2 stream window of a tonic client (hyper's default, 2 MiB), with a margin: the relay has written a
/// stream that does not read this much only once the window is full.
const CLIENT_STREAM_WINDOW: f64 = (2 << 20) as f64 + (64 << 10) as f64;

/// Asserts that `status` is the draining notice: `UNAVAILABLE` with `skytale-error-code: draining`.
fn assert_draining(status: &tonic::Status) {
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let code = status.metadata().get(keys::ERROR_CODE).and_then(|value| value.to_str().ok());
    assert_eq!(code, Some(code::DRAINING), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_open_when_the_drain_begins_gets_every_ack_it_is_owed_then_the_draining_notice() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(config(dir.path())).await;
    let ch = channel("acme/team/drain");
    let mut group = new_group(false);
    let mut publisher = Stream::open(relay.local_addr()).await;
    let sender = publisher.sender();
    for i in 0..PIPELINED {
        sender.send(publish(&ch, &format!("m{i}"), group.application(format!("message {i}").as_bytes()))).await;
    }
    // The relay is taking the publishes: drain now, while it still owes acks.
    assert_eq!(ack_seq(&publisher.recv().await), 1);
    let draining = tokio::spawn(relay.shutdown());

    let mut acked = 1;
    let notice = loop {
        let frame = publisher.recv().await;
        if is_error(&frame) {
            break frame;
        }
        acked += 1;
        assert_eq!(ack_seq(&frame), acked, "acks come in publish order, none missing");
        assert_eq!(meta(&frame, keys::MSG_ID), Some(format!("m{}", acked - 1).as_str()));
    };
    assert_eq!(error_code(&notice), code::DRAINING);
    let status = publisher.try_recv().await.expect_err("the stream ends with the draining status");
    assert_draining(&status);
    tokio::time::timeout(SHUTDOWN_WAIT, draining).await.expect("the relay stops").unwrap();

    // The log holds exactly what was acknowledged: nothing acknowledged was lost, nothing unacknowledged stored.
    let relay = start(config(dir.path())).await;
    assert_eq!(head(relay.local_addr(), &ch).await, acked);
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_holds_the_drain_until_the_timeout_then_is_cut_and_new_connections_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay_config = config(dir.path());
    relay_config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    relay_config.drain_timeout = Duration::from_secs(2);
    let relay = start(relay_config).await;
    let (addr, admin) = (relay.local_addr(), relay.admin_addr().expect("admin listener"));
    let ch = channel("acme/team/backlog");
    let mut group = new_group(false);
    // Far more than HTTP/2 flow control lets through to a client that does not read: 16 MiB.
    let backlog: Vec<(String, Vec<u8>)> =
        (0..4096).map(|i| (format!("m{i}"), group.application(&vec![b'x'; 4096]))).collect();
    let mut publisher = Stream::open(addr).await;
    publisher.publish_all(&ch, backlog).await;
    let mut stalled = Stream::open(addr).await;
    stalled.subscribe_ok(&ch, 1, From::Seq(1)).await;
    // Stalled for good once the relay has queued it more than its HTTP/2 stream window takes: the notice can then
    // never get through, whatever is still queued.
    eventually("the stalled stream's window to fill", || async {
        let now = Scrape::take(admin).await;
        (now.value("skytale_relay_delivered_bytes_total", &[]) > CLIENT_STREAM_WINDOW).then_some(())
    })
    .await;
    // A stream that reads, to see the drain begin.
    let mut watcher = Stream::open(addr).await;
    watcher.subscribe_ok(&channel("acme/team/quiet"), 1, From::Live).await;
    let before = Scrape::take(admin).await;
    assert_eq!(before.value("skytale_relay_draining", &[]), 0.0);

    let draining = tokio::spawn(relay.shutdown());
    assert_eq!(error_code(&watcher.recv().await), code::DRAINING);
    assert_draining(&watcher.try_recv().await.expect_err("the draining status"));
    // The stalled stream still holds the drain open.
    assert!(Stream::try_open(addr).await.is_err(), "a new connection during the drain is refused");
    let (status, body) = get(admin, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("relay: draining"), "{body}");
    assert_eq!(Scrape::take(admin).await.value("skytale_relay_draining", &[]), 1.0);

    tokio::time::timeout(SHUTDOWN_WAIT, draining).await.expect("the relay stops at its drain timeout").unwrap();
    // What the stalled client had buffered, then the cut: no notice reached it, its connection was closed.
    let ended = loop {
        match stalled.try_recv().await {
            Ok(Some(frame)) => assert!(is_delivery(&frame), "{frame:?}"),
            ended => break ended,
        }
    };
    let status = ended.expect_err("the stalled stream was cut");
    assert!(status.metadata().get(keys::ERROR_CODE).is_none(), "the cut is not the draining notice: {status:?}");
}
