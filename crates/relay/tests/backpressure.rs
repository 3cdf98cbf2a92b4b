//! Backpressure, never silent loss (docs/relay.md, "Memory and backpressure"): a subscriber that does not read
//! makes its own stream lag, while publishers and other subscribers carry on, and it later receives everything in
//! order.

mod common;

use common::mls_group::new_group;
use common::{blob, channel, config, seq, start, From, Stream};

const BACKLOG: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_receives_a_10000_message_backlog_in_order_without_slowing_others() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(config(dir.path())).await;
    let ch = channel("acme/team/firehose");
    let mut group = new_group(false);
    let messages: Vec<(String, Vec<u8>)> = (0..BACKLOG)
        .map(|i| (format!("m{i}"), group.application(format!("message {i} {}", "x".repeat(200)).as_bytes())))
        .collect();
    let blobs: Vec<Vec<u8>> = messages.iter().map(|(_, b)| b.clone()).collect();

    // Subscribed live, then reads nothing while the whole backlog is published.
    let mut slow = Stream::open(relay.local_addr()).await;
    slow.subscribe_ok(&ch, 1, From::Live).await;
    let mut fast = Stream::open(relay.local_addr()).await;
    fast.subscribe_ok(&ch, 1, From::Live).await;

    let mut publisher = Stream::open(relay.local_addr()).await;
    let publishing = {
        let ch = ch.clone();
        tokio::spawn(async move { publisher.publish_all(&ch, messages).await })
    };
    // Another subscriber keeps up with the publisher while the slow one is stalled.
    let fast_seqs: Vec<u64> = fast.deliveries(BACKLOG).await.iter().map(seq).collect();
    assert_eq!(fast_seqs, (1..=BACKLOG as u64).collect::<Vec<_>>());
    // Every publish was acknowledged although the slow stream has not read a single delivery.
    assert_eq!(publishing.await.unwrap(), (1..=BACKLOG as u64).collect::<Vec<_>>());

    let received = slow.deliveries(BACKLOG).await;
    for (i, delivery) in received.iter().enumerate() {
        assert_eq!(seq(delivery), i as u64 + 1);
        assert_eq!(blob(delivery), blobs[i].as_slice());
    }
    relay.shutdown().await;
}
