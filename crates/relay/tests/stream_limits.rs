//! What one stream and one connection may hold (docs/protocol.md, "Stream limits"; docs/relay.md, "Memory and
//! backpressure"): caps on subscriptions and distinct names per stream, the idle-stream timeout, and the in-flight
//! budgets per connection and per account. Each limit is set low here so the test reaches it quickly; the
//! defaults are checked to let one stream follow thousands of channels.

mod common;

use std::time::{Duration, Instant};

use common::mls_group::new_group;
use common::mls_member::member;
use common::{blob, channel, config, error_code, head_query, meta, seq, start, subscription_ack, From, Stream};
use skytale_auth::TokenIssuer;
use skytale_proto::meta as keys;
use skytale_relay::{RelayAuth, RelayHandle};
use tonic::transport::Channel;

/// Subscribes and returns the refusal's error code and message.
async fn subscribe_refused(stream: &mut Stream, name: &str, id: u64) -> (String, String) {
    let ack = stream.subscribe(&channel(name), id, From::Live).await;
    let refused = subscription_ack(&ack);
    assert!(!refused.success, "{ack:?}");
    (meta(&ack, keys::ERROR_CODE).unwrap_or_default().to_owned(), refused.error.clone())
}

#[tokio::test]
async fn the_default_subscription_cap_lets_one_stream_follow_4096_channels_and_refuses_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(config(dir.path())).await;
    let mut stream = Stream::open(relay.local_addr()).await;
    let max = skytale_relay::DEFAULT_MAX_SUBSCRIPTIONS_PER_STREAM as u64;
    for n in 1..=max {
        stream.subscribe_ok(&channel(&format!("acme/many/c{n}")), n, From::Live).await;
    }
    let (code, message) = subscribe_refused(&mut stream, "acme/many/one-more", max + 1).await;
    assert_eq!(code, "quota_subscriptions");
    assert!(message.contains(&format!("{max} subscriptions")), "{message}");
    relay.shutdown().await;
}

#[tokio::test]
async fn subscriptions_beyond_the_cap_are_refused_until_one_ends() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.max_subscriptions_per_stream = 3;
    let relay = start(config).await;
    let mut stream = Stream::open(relay.local_addr()).await;
    for (id, name) in [(1, "acme/cap/a"), (2, "acme/cap/b"), (3, "acme/cap/c")] {
        stream.subscribe_ok(&channel(name), id, From::Live).await;
    }
    let (code, message) = subscribe_refused(&mut stream, "acme/cap/d", 4).await;
    assert_eq!(code, "quota_subscriptions");
    assert!(message.contains("3 subscriptions"), "{message}");
    // Subscribing again to a followed channel replaces that subscription: no new one.
    stream.subscribe_ok(&channel("acme/cap/a"), 5, From::Live).await;

    stream.send(common::unsubscribe(&channel("acme/cap/b"), 6)).await;
    assert!(subscription_ack(&stream.recv().await).success);
    stream.subscribe_ok(&channel("acme/cap/d"), 7, From::Live).await;

    // The cap is per stream: another stream subscribes freely.
    let mut other = Stream::open(relay.local_addr()).await;
    other.subscribe_ok(&channel("acme/cap/e"), 1, From::Live).await;
    relay.shutdown().await;
}

#[tokio::test]
async fn a_stream_may_use_so_many_distinct_names_and_is_refused_new_ones_beyond() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.max_names_per_stream = 3;
    let relay = start(config).await;
    let mut stream = Stream::open(relay.local_addr()).await;
    let mut group = new_group(false);
    let (a, b, c) = (channel("acme/names/a"), channel("acme/names/b"), channel("acme/names/c"));

    // Three names, each used by a different kind of frame, and used again.
    assert_eq!(stream.publish_ok(&a, "m1", group.application(b"one")).await, 1);
    stream.send(head_query(&b, Some("q1"))).await;
    assert_eq!(meta(&stream.recv().await, keys::HEAD_SEQ), Some("0"));
    stream.subscribe_ok(&c, 1, From::Live).await;
    stream.send(common::unsubscribe(&c, 2)).await;
    assert!(subscription_ack(&stream.recv().await).success);

    // A fourth name is refused, whatever the frame.
    let d = channel("acme/names/d");
    let reply = stream.publish(&d, "m2", new_group(false).application(b"two")).await;
    assert_eq!(error_code(&reply), "quota_names");
    assert!(meta(&reply, keys::ERROR).is_some_and(|e| e.contains("3 distinct channel names")), "{reply:?}");
    stream.send(head_query(&d, Some("q2"))).await;
    assert_eq!(error_code(&stream.recv().await), "quota_names");
    assert_eq!(subscribe_refused(&mut stream, "acme/names/d", 3).await.0, "quota_names");

    // The names already used stay usable.
    stream.subscribe_ok(&c, 4, From::Live).await;
    assert_eq!(stream.publish_ok(&a, "m3", group.application(b"three")).await, 2);
    relay.shutdown().await;
}

#[tokio::test]
async fn subscribing_1000_times_to_one_channel_on_one_stream_holds_one_subscription() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(config(dir.path())).await;
    let ch = channel("acme/repeat/news");
    let mut stream = Stream::open(relay.local_addr()).await;
    for id in 1..=1000 {
        stream.subscribe_ok(&ch, id, From::Live).await;
    }
    // Each publish is delivered to the stream once: 1 000 stalled subscriptions of one stream cost what one does.
    let mut publisher = Stream::open(relay.local_addr()).await;
    let mut group = new_group(false);
    for n in 1..=2 {
        assert_eq!(publisher.publish_ok(&ch, &format!("m{n}"), group.application(b"once")).await, n);
    }
    assert_eq!(stream.deliveries(2).await.iter().map(seq).collect::<Vec<_>>(), [1, 2]);
    relay.shutdown().await;
}

/// Idle timeout of [`idle_streams_are_closed_and_useful_ones_stay`]: long enough that a loaded machine does not
/// make the publishing stream look idle between two publishes.
const IDLE_TIMEOUT: Duration = Duration::from_secs(3);

/// Reads the frame that ends a stream closed by the relay and the end itself; returns the frame's error code.
async fn closed_by_relay(stream: &mut Stream) -> (String, tonic::Code) {
    let frame = stream.recv().await;
    let code = error_code(&frame).to_owned();
    match stream.try_recv().await {
        Err(status) => (code, status.code()),
        other => panic!("expected the stream to end after {frame:?}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_streams_are_closed_and_useful_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.idle_stream_timeout = IDLE_TIMEOUT;
    let relay = start(config).await;
    let ch = channel("acme/idle/news");

    // A stream that does nothing, and one whose only subscription ended.
    let mut silent = Stream::open(relay.local_addr()).await;
    let mut unsubscribed = Stream::open(relay.local_addr()).await;
    unsubscribed.subscribe_ok(&ch, 1, From::Live).await;
    unsubscribed.send(common::unsubscribe(&ch, 2)).await;
    assert!(subscription_ack(&unsubscribed.recv().await).success);
    // A subscribed stream, and one that only publishes.
    let mut subscriber = Stream::open(relay.local_addr()).await;
    subscriber.subscribe_ok(&ch, 1, From::Live).await;
    let mut publisher = Stream::open(relay.local_addr()).await;
    let mut group = new_group(false);

    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < IDLE_TIMEOUT * 2 {
        n += 1;
        assert_eq!(publisher.publish_ok(&ch, &format!("m{n}"), group.application(b"tick")).await, n);
        tokio::time::sleep(IDLE_TIMEOUT / 6).await;
    }
    for stream in [&mut silent, &mut unsubscribed] {
        assert_eq!(closed_by_relay(stream).await, ("idle_timeout".to_owned(), tonic::Code::DeadlineExceeded));
    }
    // The subscriber got every message, the publisher is still served.
    let delivered: Vec<u64> = subscriber.deliveries(n as usize).await.iter().map(seq).collect();
    assert_eq!(delivered, (1..=n).collect::<Vec<_>>());
    assert_eq!(publisher.publish_ok(&ch, "last", group.application(b"last")).await, n + 1);
    relay.shutdown().await;
}

/// `count` application messages of `size` bytes, made by `application`.
fn applications(count: usize, size: usize, mut application: impl FnMut(&[u8]) -> Vec<u8>) -> Vec<Vec<u8>> {
    (0..count).map(|i| application(&vec![i as u8; size])).collect()
}

/// Publishes `blobs` to `name` on a stream of its own, opened with `credentials`.
async fn backlog(relay: &RelayHandle, name: &str, blobs: &[Vec<u8>], credentials: Option<&Credentials>) {
    let mut publisher = open(common::connect(relay.local_addr()).await, credentials).await;
    let messages = blobs.iter().enumerate().map(|(i, blob)| (format!("m{i}"), blob.clone())).collect();
    publisher.publish_all(&channel(name), messages).await;
}

/// A token, and the headers proving the stream's MLS member key.
struct Credentials {
    token: String,
    proof: Vec<(&'static str, String)>,
}

/// Opens a stream on `connection`, anonymous or with `credentials`.
async fn open(connection: Channel, credentials: Option<&Credentials>) -> Stream {
    match credentials {
        None => Stream::open_on(connection, None).await.unwrap(),
        Some(credentials) => {
            Stream::open_on_with(connection, Some(&credentials.token), &credentials.proof).await.unwrap()
        }
    }
}

/// Streams on `connections` connections of `per_connection` streams each, all subscribed to `name` from seq 1
/// and reading nothing yet. Subscribed before anything is published: the streams of a connection share its
/// HTTP/2 window, so once deliveries to stalled streams fill it, not even a `SubscriptionAck` gets through.
async fn stalled_subscribers(
    relay: &RelayHandle,
    name: &str,
    connections: usize,
    per_connection: usize,
    credentials: Option<&Credentials>,
) -> Vec<Stream> {
    let mut streams = Vec::new();
    for _ in 0..connections {
        let connection = common::connect(relay.local_addr()).await;
        for _ in 0..per_connection {
            let mut stream = open(connection.clone(), credentials).await;
            stream.subscribe_ok(&channel(name), 1, From::Seq(1)).await;
            streams.push(stream);
        }
    }
    streams
}

/// Watches the relay's bytes in flight while stalled subscribers fill their budgets: never above `bound`, and
/// (so the budget was really reached) at least half of it at some point. Bounded: 100 samples.
async fn in_flight_stays_within(relay: &RelayHandle, bound: usize) {
    let mut peak = 0;
    for _ in 0..100 {
        let now = relay.in_flight_bytes();
        assert!(now <= bound, "{now} bytes in flight, more than {bound}");
        peak = peak.max(now);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(peak >= bound / 2, "the subscribers never filled their budget: at most {peak} bytes in flight");
}

/// Lets every stream read its `blobs` at once and checks they arrive complete and in order.
async fn all_delivered(streams: Vec<Stream>, blobs: &[Vec<u8>]) {
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            let count = blobs.len();
            tokio::spawn(async move { stream.deliveries(count).await })
        })
        .collect();
    for reader in readers {
        let delivered = reader.await.unwrap();
        for (i, delivery) in delivered.iter().enumerate() {
            assert_eq!((seq(delivery), blob(delivery)), (i as u64 + 1, blobs[i].as_slice()));
        }
    }
}

/// The messages each stalled subscriber is owed: 5 MiB, more than the feed's cache, so that what a subscriber
/// catches up on late is read from SQLite, a copy per subscriber, and more than the client's HTTP/2 windows take
/// off the relay's hands.
const BACKLOG_MESSAGES: usize = 80;
const BACKLOG_MESSAGE_SIZE: usize = 64 << 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_subscribers_hold_at_most_their_connections_budget_and_catch_up_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    let per_connection = 1 << 20;
    config.max_in_flight_per_connection = per_connection;
    let relay = start(config).await;
    let stalled = stalled_subscribers(&relay, "acme/stalled/backlog", 2, 4, None).await;
    let mut group = new_group(false);
    let blobs = applications(BACKLOG_MESSAGES, BACKLOG_MESSAGE_SIZE, |text| group.application(text));
    backlog(&relay, "acme/stalled/backlog", &blobs, None).await;
    in_flight_stays_within(&relay, 2 * per_connection).await;
    all_delivered(stalled, &blobs).await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_stalled_streams_share_its_budget_and_other_accounts_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = TokenIssuer::ephemeral().unwrap();
    let mut config = config(dir.path());
    let (per_connection, per_account) = (1 << 20, 3 << 19);
    config.max_in_flight_per_connection = per_connection;
    config.max_in_flight_per_account = per_account;
    config.auth = RelayAuth::jwt(issuer.verifier().unwrap());
    let relay = start(config).await;
    let mut alice = member("alice");
    let credentials = |account: &str| {
        let token = issuer.issue(account, "acme", vec![]).unwrap().token;
        Credentials { proof: alice.proof_headers(&token), token }
    };
    let name = "acme/stalled/shared";

    // Two connections of one account: together they hold no more than the account's budget, less than two
    // connections' worth. Every stream proves Alice's key: the channel is her group.
    let stalled = stalled_subscribers(&relay, name, 2, 4, Some(&credentials("acct_a"))).await;
    let (publisher, other) = (credentials("acct_p"), credentials("acct_b"));
    let mut blobs = vec![alice.create()];
    blobs.extend(applications(BACKLOG_MESSAGES, BACKLOG_MESSAGE_SIZE, |text| alice.application(text)));
    backlog(&relay, name, &blobs, Some(&publisher)).await;
    in_flight_stays_within(&relay, per_account).await;
    // Another account's subscriber gets everything meanwhile.
    let mut other = open(common::connect(relay.local_addr()).await, Some(&other)).await;
    other.subscribe_ok(&channel(name), 1, From::Seq(1)).await;
    all_delivered(vec![other], &blobs).await;

    all_delivered(stalled, &blobs).await;
    relay.shutdown().await;
}
