//! The relay over TLS (docs/operations.md, "TLS"): gRPC streams publish and deliver through it, a client that
//! trusts another CA is refused with the reason, the handshake happens inside the connection caps and the
//! handshake timeout without holding up the accept loop, and a certificate replaced on disk reaches new
//! connections while open streams go on. Certificates come from `LocalCa`s in temporary directories.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::mls_group::{new_group, MlsGroup};
use common::{blob, channel, config, seq, start, From, Stream};
use mls_rs::client_builder::MlsConfig;
use skytale_relay::{JwksError, JwksFollow, RelayConfig, RelayHandle, TlsFiles};
use skytale_tls_server::LocalCa;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// Far longer than any test here waits, so a socket closed within a test was closed by a cap, not by this.
const NEVER: Duration = Duration::from_secs(3600);
/// Guard against a hung test: how long a socket may take to be closed by the relay.
const CLOSE_WAIT: Duration = Duration::from_secs(60);
const CHANNEL: &str = "acme/team/tls";

fn local_ca() -> (TempDir, LocalCa) {
    let dir = tempfile::tempdir().unwrap();
    let ca = LocalCa::load_or_create(dir.path()).unwrap();
    (dir, ca)
}

/// A relay serving `files`, with `adjust`ed limits.
async fn tls_relay(data_dir: &Path, files: &TlsFiles, adjust: impl FnOnce(&mut RelayConfig)) -> RelayHandle {
    let mut config = config(data_dir);
    config.tls = Some(files.clone());
    adjust(&mut config);
    start(config).await
}

/// One HTTP/2 connection over TLS to `https://127.0.0.1:PORT`, trusting only the CA in `ca_file`.
async fn tls_channel(relay: SocketAddr, ca_file: &Path) -> Result<Channel, tonic::transport::Error> {
    let ca = Certificate::from_pem(std::fs::read(ca_file).unwrap());
    Endpoint::from_shared(format!("https://{relay}"))
        .unwrap()
        .tls_config(ClientTlsConfig::new().ca_certificate(ca))?
        .connect()
        .await
}

async fn tls_stream(relay: SocketAddr, ca_file: &Path) -> Stream {
    Stream::open_on(tls_channel(relay, ca_file).await.expect("TLS connection"), None).await.expect("stream opens")
}

/// An error with its causes, as one line.
fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        text.push_str(&format!(": {error}"));
        cause = error.source();
    }
    text
}

/// A raw TLS connection to `relay` as `127.0.0.1` offering HTTP/2 (and sending nothing after the handshake),
/// trusting only the CA in `ca_file`.
async fn raw_tls(relay: SocketAddr, ca_file: &Path) -> Result<TlsStream<TcpStream>, String> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(ca_file).unwrap()).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(relay).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    TlsConnector::from(Arc::new(config)).connect(name, tcp).await.map_err(|e| e.to_string())
}

/// The certificate the relay presents to a new connection trusting only `ca_file`, or why the handshake failed.
async fn presented(relay: SocketAddr, ca_file: &Path) -> Result<CertificateDer<'static>, String> {
    let tls = raw_tls(relay, ca_file).await?;
    Ok(tls.get_ref().1.peer_certificates().expect("a server certificate")[0].clone())
}

/// Waits until the relay closes `socket` (end of stream or reset); fails the test if it stays open.
async fn assert_closed_by_relay(socket: &mut (impl AsyncReadExt + Unpin)) {
    let mut rest = Vec::new();
    match tokio::time::timeout(CLOSE_WAIT, socket.read_to_end(&mut rest)).await {
        Ok(_) => {}
        Err(_) => panic!("the relay kept a socket open for {CLOSE_WAIT:?}"),
    }
}

/// A subscriber and a publisher on their own TLS connections, checked to still exchange messages.
struct Pair {
    publisher: Stream,
    subscriber: Stream,
}

impl Pair {
    async fn open(relay: SocketAddr, ca_file: &Path) -> Pair {
        let mut subscriber = tls_stream(relay, ca_file).await;
        subscriber.subscribe_ok(&channel(CHANNEL), 1, From::Seq(1)).await;
        Pair { publisher: tls_stream(relay, ca_file).await, subscriber }
    }

    /// Publishes `count` messages of `group` and checks the subscriber gets each, in order.
    async fn exchange(&mut self, group: &mut MlsGroup<impl MlsConfig>, first_seq: u64, count: u64) {
        let ch = channel(CHANNEL);
        for n in first_seq..first_seq + count {
            let payload = group.application(format!("message {n}").as_bytes());
            assert_eq!(self.publisher.publish_ok(&ch, &format!("m{n}"), payload.clone()).await, n);
            let delivered = self.subscriber.deliveries(1).await;
            assert_eq!((seq(&delivered[0]), blob(&delivered[0])), (n, payload.as_slice()));
        }
    }
}

#[tokio::test]
async fn streams_over_tls_deliver_and_a_client_trusting_another_ca_is_told_why_it_is_refused() {
    let (_ca_dir, ca) = local_ca();
    let (_other_dir, other) = local_ca();
    let dir = tempfile::tempdir().unwrap();
    let relay = tls_relay(dir.path(), &ca.server, |_| {}).await;
    let mut pair = Pair::open(relay.local_addr(), &ca.ca_file).await;
    pair.exchange(&mut new_group(false), 1, 3).await;

    let refused = tls_channel(relay.local_addr(), &other.ca_file).await.expect_err("another CA is refused");
    assert!(with_causes(&refused).contains("invalid peer certificate: UnknownIssuer"), "{}", with_causes(&refused));
    // Plain HTTP/2 to a TLS relay is no TLS handshake: the connection is closed.
    let plain = Endpoint::from_shared(format!("http://{}", relay.local_addr())).unwrap().connect_lazy();
    let opened = tokio::time::timeout(CLOSE_WAIT, Stream::open_on(plain, None)).await.expect("refused in time");
    assert!(opened.is_err(), "plain HTTP/2 got a stream from a TLS relay");
    relay.shutdown().await;
}

#[tokio::test]
async fn handshakes_that_never_end_are_closed_at_the_handshake_timeout_and_hold_up_no_other_connection() {
    let (_ca_dir, ca) = local_ca();
    let dir = tempfile::tempdir().unwrap();
    let relay = tls_relay(dir.path(), &ca.server, |config| config.handshake_timeout = Duration::from_secs(1)).await;
    let addr = relay.local_addr();
    let mut pair = Pair::open(addr, &ca.ca_file).await;
    let mut group = new_group(false);
    pair.exchange(&mut group, 1, 1).await;

    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    // Half a ClientHello, then nothing.
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await.unwrap();
    // A finished TLS handshake without the HTTP/2 preface after it is held to the same deadline.
    let mut no_preface = raw_tls(addr, &ca.ca_file).await.expect("TLS handshake");

    let all_closed = async {
        for socket in &mut silent {
            assert_closed_by_relay(socket).await;
        }
        assert_closed_by_relay(&mut partial).await;
        assert_closed_by_relay(&mut no_preface).await;
    };
    tokio::time::timeout(CLOSE_WAIT, all_closed).await.expect("every unfinished connection closed in time");
    // The pair's connections are older than the timeout too: having finished both, they stay.
    pair.exchange(&mut group, 2, 3).await;
    relay.shutdown().await;
}

#[tokio::test]
async fn unfinished_handshakes_count_against_the_caps_without_holding_up_the_accept_loop() {
    let (_ca_dir, ca) = local_ca();
    let dir = tempfile::tempdir().unwrap();
    let relay = tls_relay(dir.path(), &ca.server, |config| {
        config.max_connections = 12;
        config.handshake_timeout = NEVER;
    })
    .await;
    let addr = relay.local_addr();

    // Ten sockets in their handshake: with handshakes in the accept loop, the pair would wait behind them.
    let mut silent = Vec::new();
    for _ in 0..10 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut pair = Pair::open(addr, &ca.ca_file).await;
    let mut group = new_group(false);
    pair.exchange(&mut group, 1, 2).await;

    // Twelve counted: the next one is closed at once, handshake or not.
    let mut over = TcpStream::connect(addr).await.unwrap();
    assert_closed_by_relay(&mut over).await;
    assert!(tls_channel(addr, &ca.ca_file).await.is_err(), "a TLS connection over the cap");

    // A socket that goes away frees its place.
    drop(silent.pop());
    let mut admitted = None;
    for _ in 0..100 {
        if let Ok(connection) = tls_channel(addr, &ca.ca_file).await {
            admitted = Some(connection);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connection = admitted.expect("a connection is admitted once another one closed");
    let mut late = Stream::open_on(connection, None).await.expect("stream opens");
    late.subscribe_ok(&channel(CHANNEL), 1, From::Seq(1)).await;
    assert_eq!(late.deliveries(2).await.iter().map(seq).collect::<Vec<_>>(), [1, 2]);
    pair.exchange(&mut group, 3, 1).await;
    relay.shutdown().await;
}

#[tokio::test]
async fn a_certificate_replaced_on_disk_reaches_new_connections_while_open_streams_go_on() {
    let (_ca_dir, ca) = local_ca();
    let (_other_dir, other) = local_ca();
    let dir = tempfile::tempdir().unwrap();
    let files = TlsFiles { reload_interval: Duration::from_millis(50), ..ca.server.clone() };
    let relay = tls_relay(dir.path(), &files, |_| {}).await;
    let addr = relay.local_addr();
    let first = CertificateDer::from_pem_file(&files.cert).unwrap();
    assert_eq!(presented(addr, &ca.ca_file).await.unwrap(), first);
    let mut pair = Pair::open(addr, &ca.ca_file).await;
    let mut group = new_group(false);
    pair.exchange(&mut group, 1, 2).await;

    // A renewal by another CA, each file renamed into place.
    for (from, to) in [(&other.server.key, &files.key), (&other.server.cert, &files.cert)] {
        let temporary = to.with_extension("new");
        std::fs::copy(from, &temporary).unwrap();
        std::fs::rename(&temporary, to).unwrap();
    }
    let renewed = CertificateDer::from_pem_file(&other.server.cert).unwrap();
    let mut reloaded = false;
    for _ in 0..600 {
        if presented(addr, &other.ca_file).await.as_ref() == Ok(&renewed) {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reloaded, "new connections never got the renewed certificate");

    // The pair trusts only the first CA: its connections, handshaken before, carry on.
    pair.exchange(&mut group, 3, 3).await;
    let refused = presented(addr, &ca.ca_file).await.expect_err("the first CA no longer verifies");
    assert!(refused.contains("UnknownIssuer"), "{refused}");
    let mut renewed_stream = tls_stream(addr, &other.ca_file).await;
    renewed_stream.subscribe_ok(&channel(CHANNEL), 2, From::Seq(1)).await;
    assert_eq!(renewed_stream.deliveries(5).await.iter().map(seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    relay.shutdown().await;
}

#[tokio::test]
async fn the_key_set_of_an_api_behind_a_private_ca_is_fetched_trusting_that_ca_and_refused_without_it() {
    let (_ca_dir, ca) = local_ca();
    let api_dir = tempfile::tempdir().unwrap();
    let mut api_config = skytale_api::ApiConfig::in_data_dir(api_dir.path(), "127.0.0.1:0".parse().unwrap());
    api_config.tls = Some(ca.server.clone());
    let api = skytale_api::Api::start(api_config).await.unwrap();
    let url = format!("https://{}/.well-known/jwks.json", api.local_addr());

    let trusting = JwksFollow { ca_file: Some(ca.ca_file.clone()), ..JwksFollow::new(url.clone()) };
    let verifier = skytale_relay::fetch_verifier(&trusting).await.expect("the private CA is trusted");
    assert_eq!(verifier.key_ids().len(), 1);

    match skytale_relay::fetch_verifier(&JwksFollow::new(url.clone())).await {
        Err(JwksError::Fetch { reason, .. }) => assert!(reason.contains("UnknownIssuer"), "{reason}"),
        Err(other) => panic!("expected a certificate error, got {other}"),
        Ok(_) => panic!("a certificate of a private CA was trusted without its CA"),
    }

    let not_pem = api_dir.path().join("not-a-ca.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let missing = api_dir.path().join("missing.pem");
    for ca_file in [not_pem, missing] {
        let follow = JwksFollow { ca_file: Some(ca_file.clone()), ..JwksFollow::new(url.clone()) };
        match skytale_relay::fetch_verifier(&follow).await {
            Err(error @ JwksError::CaFile { .. }) => {
                assert!(error.to_string().contains(&ca_file.display().to_string()), "{error}")
            }
            Err(other) => panic!("expected the CA file to be named, got {other}"),
            Ok(_) => panic!("{} was taken for a CA", ca_file.display()),
        }
    }
    api.shutdown().await.unwrap();
}
