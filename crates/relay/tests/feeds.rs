//! Channel feeds live only while in use (docs/relay.md, "Memory and backpressure"): subscribing to or querying
//! ever new names leaves nothing behind, and a stored channel whose feed was freed starts a new one where its
//! log is.

mod common;

use std::time::Duration;

use common::mls_group::new_group;
use common::{channel, config, head_query, is_error, meta, seq, start, subscribe, unsubscribe, From, Stream};
use skytale_proto::meta as keys;
use skytale_relay::RelayHandle;

/// Distinct names subscribed to, unsubscribed from and queried.
const NAMES: usize = 100_000;
/// Guard against a hung test: the relay answers all of them in seconds.
const FLOOD_WAIT: Duration = Duration::from_secs(600);

/// Waits until the relay holds `expected` channels in memory; fails the test if it never does. Stopped cursors
/// let go of their feed when their task is dropped, just after the unsubscribe is answered.
async fn wait_for_channels_in_memory(relay: &RelayHandle, expected: usize) {
    for _ in 0..600 {
        if relay.channels_in_memory() == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} channels in memory, expected {expected}", relay.channels_in_memory());
}

#[tokio::test]
async fn names_subscribed_and_queried_once_are_forgotten_and_stored_channels_resume_where_their_log_is() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    // One stream uses every name here, far beyond the per-stream cap on distinct names (stream_limits.rs tests
    // that): lifted, so this test is about the feeds alone.
    config.max_names_per_stream = NAMES + 10;
    let relay = start(config).await;
    let kept = channel("acme/team/kept");
    let mut group = new_group(false);
    let mut publisher = Stream::open(relay.local_addr()).await;
    for n in 1..=2 {
        assert_eq!(publisher.publish_ok(&kept, &format!("m{n}"), group.application(b"kept")).await, n);
    }
    // One stored channel: the SQLite log keeps its small record however little it is used; the JetStream log keeps
    // none, a feed there starts from the subject's newest message (docs/relay.md, "The JetStream log").
    let stored = if common::store_is_jetstream() { 0 } else { 1 };
    wait_for_channels_in_memory(&relay, stored).await;

    let mut stream = Stream::open(relay.local_addr()).await;
    let sender = stream.sender();
    let feeding = tokio::spawn(async move {
        for i in 0..NAMES {
            let name = channel(&format!("acme/flood/name-{i}"));
            let id = i as u64 + 1;
            for frame in [subscribe(&name, id, From::Live), unsubscribe(&name, id), head_query(&name, Some("q"))] {
                sender.send(frame).await;
            }
        }
    });
    // Each name is answered three times: subscribed, unsubscribed, head 0 (head replies come through their
    // own pipeline, so the three kinds interleave).
    let answers = async {
        for _ in 0..3 * NAMES {
            let frame = stream.recv().await;
            assert!(!is_error(&frame), "{frame:?}");
            if let Some(head) = meta(&frame, keys::HEAD_SEQ) {
                assert_eq!(head, "0");
            }
        }
    };
    tokio::time::timeout(FLOOD_WAIT, answers).await.expect("every name answered in time");
    feeding.await.expect("feeding task");
    wait_for_channels_in_memory(&relay, stored).await;

    // A name in use is held, and forgotten once done with.
    let held = channel("acme/flood/held");
    stream.subscribe_ok(&held, 1, From::Live).await;
    wait_for_channels_in_memory(&relay, stored + 1).await;
    stream.send(unsubscribe(&held, 1)).await;
    stream.recv().await;
    wait_for_channels_in_memory(&relay, stored).await;

    // The stored channel, followed by nobody while it got a third message, gives a new subscriber its whole
    // log and then live messages.
    assert_eq!(publisher.publish_ok(&kept, "m3", group.application(b"kept")).await, 3);
    stream.subscribe_ok(&kept, 2, From::Seq(1)).await;
    assert_eq!(stream.deliveries(3).await.iter().map(seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(publisher.publish_ok(&kept, "m4", group.application(b"kept")).await, 4);
    assert_eq!(seq(&stream.deliveries(1).await[0]), 4);
    relay.shutdown().await;
}
