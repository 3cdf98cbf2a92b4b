//! A server's certificate over its life: refused at start when the files are wrong (naming the file), replaced
//! for new connections when the files change or on SIGHUP while established connections go on, and kept when a
//! replacement does not load. Certificates come from `LocalCa`s made in temporary directories; the server is an
//! echo server over `TlsIncoming`, the client tokio-rustls trusting one CA.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use skytale_tls_server::{LocalCa, ServerTls, TlsError, TlsFiles, TlsIncoming, ALPN_HTTP1};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// Guards against a hung test; never asserted on.
const WAIT: Duration = Duration::from_secs(30);
/// Long enough that only an explicit reload or SIGHUP reloads within a test.
const NEVER: Duration = Duration::from_secs(3600);

fn local_ca() -> (TempDir, LocalCa) {
    let dir = tempfile::tempdir().unwrap();
    let ca = LocalCa::load_or_create(dir.path()).unwrap();
    (dir, ca)
}

fn files_with_interval(ca: &LocalCa, reload_interval: Duration) -> TlsFiles {
    TlsFiles { reload_interval, ..ca.server.clone() }
}

/// Replaces `path` the way renewal tools do: a new file renamed over the old one.
fn replace(path: &Path, contents: &[u8]) {
    let temporary = path.with_extension("new");
    std::fs::write(&temporary, contents).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

fn pem_of(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn der_of(path: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).unwrap()
}

/// An echo server over TLS on loopback.
async fn echo_server(files: &TlsFiles, handshake_timeout: Duration) -> (ServerTls, SocketAddr) {
    let tls = ServerTls::start(files, &[ALPN_HTTP1]).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut incoming = TlsIncoming::start(listener, tls.acceptor(), handshake_timeout).unwrap();
    let addr = incoming.local_addr();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = incoming.accept().await;
            tokio::spawn(async move {
                let mut buffer = [0u8; 256];
                while let Ok(n @ 1..) = stream.read(&mut buffer).await {
                    if stream.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (tls, addr)
}

/// A TLS connection to `addr` as `localhost`, trusting only the CA in `ca_file`.
async fn connect(addr: SocketAddr, ca_file: &Path) -> io::Result<TlsStream<TcpStream>> {
    let mut roots = RootCertStore::empty();
    roots.add(der_of(ca_file)).unwrap();
    let config = ClientConfig::builder_with_provider(Arc::new(tokio_rustls::rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(WAIT, TlsConnector::from(Arc::new(config)).connect(name, tcp)).await.expect("handshake ends")
}

/// The certificate a new connection to `addr` is shown, trusting only the CA in `ca_file`.
async fn presented(addr: SocketAddr, ca_file: &Path) -> io::Result<CertificateDer<'static>> {
    let stream = connect(addr, ca_file).await?;
    Ok(stream.get_ref().1.peer_certificates().expect("a server certificate")[0].clone())
}

async fn assert_echoes(stream: &mut TlsStream<TcpStream>, text: &str) {
    stream.write_all(text.as_bytes()).await.unwrap();
    let mut echoed = vec![0u8; text.len()];
    tokio::time::timeout(WAIT, stream.read_exact(&mut echoed)).await.expect("echo in time").unwrap();
    assert_eq!(echoed, text.as_bytes());
}

/// Polls new connections (at most 600, 50 ms apart) until one trusting `ca_file` is shown `expected`.
async fn wait_until_presented(addr: SocketAddr, ca_file: &Path, expected: &CertificateDer<'static>) {
    for _ in 0..600 {
        if presented(addr, ca_file).await.ok().as_ref() == Some(expected) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("new connections never got the replaced certificate");
}

fn assert_names(error: &TlsError, paths: &[&Path]) {
    for path in paths {
        assert!(error.to_string().contains(&path.display().to_string()), "{error} does not name {}", path.display());
    }
}

#[tokio::test]
async fn start_refuses_files_that_make_no_certificate_and_key_and_names_the_file() {
    let (dir, ca) = local_ca();
    let (_other_dir, other) = local_ca();
    let start = |cert: &Path, key: &Path| ServerTls::start(&TlsFiles::new(cert, key), &[ALPN_HTTP1]).err().unwrap();
    let write = |name: &str, contents: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    };
    let (cert, key) = (&ca.server.cert, &ca.server.key);

    let missing = dir.path().join("missing.pem");
    let error = start(&missing, key);
    assert!(matches!(error, TlsError::Read { .. }), "{error}");
    assert_names(&error, &[&missing]);
    let error = start(cert, &missing);
    assert!(matches!(error, TlsError::Read { .. }), "{error}");
    assert_names(&error, &[&missing]);

    // The two files swapped on the command line.
    let error = start(key, cert);
    assert!(matches!(error, TlsError::NoCertificate { .. }), "{error}");
    assert_names(&error, &[key]);
    let error = start(cert, cert);
    assert!(matches!(error, TlsError::NoKey { .. }), "{error}");
    assert_names(&error, &[cert]);

    let broken = write("broken.pem", b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
    let error = start(&broken, key);
    assert!(matches!(error, TlsError::BadPem { .. }), "{error}");
    assert_names(&error, &[&broken]);
    let not_x509 = write("not-x509.pem", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    let error = start(&not_x509, key);
    assert!(matches!(error, TlsError::BadCertificate { .. }), "{error}");
    assert_names(&error, &[&not_x509]);
    let not_a_key = write("not-a-key.pem", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    let error = start(cert, &not_a_key);
    assert!(matches!(error, TlsError::UnusableKey { .. }), "{error}");
    assert_names(&error, &[&not_a_key]);

    let error = start(cert, &other.server.key);
    assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error}");
    assert_names(&error, &[cert, &other.server.key]);

    ServerTls::start(&ca.server, &[ALPN_HTTP1]).expect("the local CA's own files load");
}

#[tokio::test]
async fn a_reload_that_fails_keeps_the_certificate_in_service_and_one_that_loads_replaces_it() {
    let (_dir, ca) = local_ca();
    let (_other_dir, other) = local_ca();
    let files = files_with_interval(&ca, NEVER);
    let (tls, addr) = echo_server(&files, WAIT).await;
    let first = der_of(&ca.server.cert);
    assert_eq!(presented(addr, &ca.ca_file).await.unwrap(), first);

    replace(&files.cert, b"renewal went wrong");
    let error = tls.reload().err().unwrap();
    assert!(matches!(error, TlsError::NoCertificate { .. }), "{error}");
    assert_names(&error, &[&files.cert]);
    assert_eq!(presented(addr, &ca.ca_file).await.unwrap(), first);

    // Half a renewal: the new certificate, the old key.
    replace(&files.cert, &pem_of(&other.server.cert));
    let error = tls.reload().err().unwrap();
    assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error}");
    assert_names(&error, &[&files.cert, &files.key]);
    assert_eq!(presented(addr, &ca.ca_file).await.unwrap(), first);

    replace(&files.key, &pem_of(&other.server.key));
    tls.reload().unwrap();
    assert_eq!(presented(addr, &other.ca_file).await.unwrap(), der_of(&other.server.cert));
    let refused = presented(addr, &ca.ca_file).await.err().unwrap();
    assert!(refused.to_string().contains("UnknownIssuer"), "{refused}");
}

#[tokio::test]
async fn changed_files_reach_new_connections_while_established_ones_go_on() {
    let (_dir, ca) = local_ca();
    let (_other_dir, other) = local_ca();
    let files = files_with_interval(&ca, Duration::from_millis(50));
    let (_tls, addr) = echo_server(&files, WAIT).await;
    let mut established = connect(addr, &ca.ca_file).await.unwrap();
    assert_echoes(&mut established, "before").await;

    replace(&files.key, &pem_of(&other.server.key));
    replace(&files.cert, &pem_of(&other.server.cert));
    wait_until_presented(addr, &other.ca_file, &der_of(&other.server.cert)).await;

    assert_echoes(&mut established, "after").await;
    let refused = connect(addr, &ca.ca_file).await.err().unwrap();
    assert!(refused.to_string().contains("UnknownIssuer"), "{refused}");
}

#[tokio::test]
async fn sighup_rereads_the_files() {
    let (_dir, ca) = local_ca();
    let (_other_dir, other) = local_ca();
    let files = files_with_interval(&ca, NEVER);
    let (_tls, addr) = echo_server(&files, WAIT).await;
    let first = der_of(&files.cert);
    replace(&files.key, &pem_of(&other.server.key));
    replace(&files.cert, &pem_of(&other.server.cert));
    assert_eq!(presented(addr, &ca.ca_file).await.unwrap(), first, "no reload before SIGHUP");

    let status = std::process::Command::new("kill").args(["-HUP", &std::process::id().to_string()]).status().unwrap();
    assert!(status.success());
    wait_until_presented(addr, &other.ca_file, &der_of(&other.server.cert)).await;
}

#[tokio::test]
async fn connections_that_never_finish_a_handshake_hold_up_no_other() {
    let (_dir, ca) = local_ca();
    // With handshakes in the accept loop, the silent sockets would keep `served` waiting for this long.
    let (_tls, addr) = echo_server(&ca.server, NEVER).await;
    let _silent: Vec<TcpStream> = silent_sockets(addr, 10).await;
    let mut served = connect(addr, &ca.ca_file).await.unwrap();
    assert_echoes(&mut served, "served while others hang").await;
}

#[tokio::test]
async fn connections_that_never_finish_a_handshake_are_closed_at_the_timeout() {
    let (_dir, ca) = local_ca();
    let (_tls, addr) = echo_server(&ca.server, Duration::from_millis(500)).await;
    let mut served = connect(addr, &ca.ca_file).await.unwrap();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut not_tls = TcpStream::connect(addr).await.unwrap();
    not_tls.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    for socket in [&mut silent, &mut not_tls] {
        let mut rest = Vec::new();
        // Closed by the server: the read ends (after whatever alert a failed handshake sent).
        tokio::time::timeout(WAIT, socket.read_to_end(&mut rest)).await.expect("the server closes the socket").ok();
    }
    // A connection past its handshake is not subject to the timeout.
    assert_echoes(&mut served, "still served").await;
}

/// `count` TCP connections to `addr` that never send a byte.
async fn silent_sockets(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut sockets = Vec::new();
    for _ in 0..count {
        sockets.push(TcpStream::connect(addr).await.unwrap());
    }
    sockets
}
