//! Connection hygiene before authentication (docs/relay.md, "Connection limits"): sockets that never speak
//! HTTP/2 are closed after the handshake timeout, connections beyond the caps are closed at once, and neither
//! disturbs the connections of a legitimate publisher and subscriber.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::mls_group::{new_group, MlsGroup};
use common::{blob, channel, config, seq, start, From, Stream};
use mls_rs::client_builder::MlsConfig;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Far longer than any test here waits, so a socket closed within a test was closed by a cap, not by this.
const NEVER: Duration = Duration::from_secs(3600);

/// Guard against a hung test: how long a socket may take to be closed by the relay.
const CLOSE_WAIT: Duration = Duration::from_secs(60);

/// Opens a TCP connection that never sends a byte.
async fn silent_socket(relay: SocketAddr) -> TcpStream {
    TcpStream::connect(relay).await.expect("TCP connect to the relay")
}

/// Waits until the relay closes `socket` (end of stream or reset); fails the test if it stays open.
async fn assert_closed_by_relay(socket: &mut TcpStream) {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(CLOSE_WAIT, socket.read(&mut byte)).await {
        Ok(Ok(0) | Err(_)) => {}
        Ok(Ok(_)) => panic!("the relay sent bytes to a socket that sent none"),
        Err(_) => panic!("the relay kept a silent socket open for {CLOSE_WAIT:?}"),
    }
}

/// A subscriber and a publisher on their own connections, checked to still exchange messages.
struct Pair {
    publisher: Stream,
    subscriber: Stream,
}

impl Pair {
    async fn open(relay: SocketAddr) -> Pair {
        let mut subscriber = Stream::open(relay).await;
        subscriber.subscribe_ok(&channel("acme/team/pair"), 1, From::Seq(1)).await;
        Pair { publisher: Stream::open(relay).await, subscriber }
    }

    /// Publishes `count` messages of `group` and checks the subscriber gets each, in order.
    async fn exchange(&mut self, group: &mut MlsGroup<impl MlsConfig>, first_seq: u64, count: u64) {
        let ch = channel("acme/team/pair");
        for n in first_seq..first_seq + count {
            let payload = group.application(format!("message {n}").as_bytes());
            assert_eq!(self.publisher.publish_ok(&ch, &format!("m{n}"), payload.clone()).await, n);
            let delivered = self.subscriber.deliveries(1).await;
            assert_eq!((seq(&delivered[0]), blob(&delivered[0])), (n, payload.as_slice()));
        }
    }
}

#[tokio::test]
async fn silent_sockets_are_closed_after_the_handshake_timeout_and_established_streams_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.handshake_timeout = Duration::from_secs(1);
    let relay = start(config).await;
    let mut pair = Pair::open(relay.local_addr()).await;
    let mut group = new_group(false);
    pair.exchange(&mut group, 1, 1).await;

    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(silent_socket(relay.local_addr()).await);
    }
    // Closed together at the timeout, so waiting for one after another stays within one `CLOSE_WAIT`.
    let all_closed = async {
        for socket in &mut silent {
            assert_closed_by_relay(socket).await;
        }
    };
    tokio::time::timeout(CLOSE_WAIT, all_closed).await.expect("every silent socket closed in time");
    // The pair's connections are older than the timeout too: having sent the preface, they stay.
    pair.exchange(&mut group, 2, 3).await;
    relay.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_per_ip_cap_are_closed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.max_connections_per_ip = 4;
    config.handshake_timeout = NEVER;
    let relay = start(config).await;
    let mut pair = Pair::open(relay.local_addr()).await;
    let mut group = new_group(false);

    // Two more fill the cap and stay open; the next ones are refused.
    let _held = [silent_socket(relay.local_addr()).await, silent_socket(relay.local_addr()).await];
    for _ in 0..10 {
        assert_closed_by_relay(&mut silent_socket(relay.local_addr()).await).await;
    }
    pair.exchange(&mut group, 1, 3).await;
    relay.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_total_cap_are_closed_at_once_and_closing_frees_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.max_connections = 3;
    config.handshake_timeout = NEVER;
    let relay = start(config).await;
    let held = silent_socket(relay.local_addr()).await;
    let mut pair = Pair::open(relay.local_addr()).await;
    let mut group = new_group(false);

    assert_closed_by_relay(&mut silent_socket(relay.local_addr()).await).await;
    pair.exchange(&mut group, 1, 2).await;

    // A closed connection no longer counts: once the relay has seen `held` go, a new stream gets its place.
    drop(held);
    let mut admitted = None;
    for _ in 0..100 {
        if let Ok(stream) = Stream::try_open(relay.local_addr()).await {
            admitted = Some(stream);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut late = admitted.expect("a connection is admitted once another one closed");
    late.subscribe_ok(&channel("acme/team/pair"), 1, From::Seq(1)).await;
    assert_eq!(late.deliveries(2).await.iter().map(seq).collect::<Vec<_>>(), [1, 2]);
    relay.shutdown().await;
}
