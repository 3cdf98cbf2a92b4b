//! A server's TLS: the rustls settings built over the reloading certificate, and the task that reloads it.

use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::store::CertStore;
use crate::{TlsError, TlsFiles, MIN_RELOAD_INTERVAL};

/// ALPN name of HTTP/2: gRPC clients (tonic) refuse a TLS connection that did not agree on it.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN name of HTTP/1.1, which HTTP clients of the API may prefer.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// TLS for one listener. Reloading stops when it is dropped; connections keep the certificate they got.
pub struct ServerTls {
    store: Arc<CertStore>,
    config: Arc<ServerConfig>,
    reloader: JoinHandle<()>,
}

impl ServerTls {
    /// Loads `files` (an error names the file that is wrong) and keeps them in service: they are re-read when
    /// their stamps change (checked every [`TlsFiles::reload_interval`]) and when the process gets SIGHUP.
    /// `alpn` lists the application protocols offered, in order of preference. Needs a tokio runtime with
    /// signals and time enabled.
    pub fn start(files: &TlsFiles, alpn: &[&[u8]]) -> Result<Self, TlsError> {
        // Explicit rather than the process default, which is ambiguous when several providers are linked in.
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let store = Arc::new(CertStore::open(files.clone(), Arc::clone(&provider))?);
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| TlsError::Settings(error.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&store) as _);
        config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
        let hangup = signal(SignalKind::hangup()).map_err(TlsError::Signal)?;
        let period = files.reload_interval.max(MIN_RELOAD_INTERVAL);
        let reloader = tokio::spawn(follow(Arc::clone(&store), period, hangup));
        tracing::info!(
            cert = %files.cert.display(),
            key = %files.key.display(),
            "TLS on; the files are re-read when they change (checked every {period:?}) and on SIGHUP"
        );
        Ok(Self { store, config: Arc::new(config), reloader })
    }

    /// Accepts TLS connections with the certificate in service at each handshake.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(&self.config))
    }

    /// Re-reads the files now, as SIGHUP does. On error (which names the file) the certificate in service stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.store.reload()
    }
}

impl Drop for ServerTls {
    fn drop(&mut self) {
        self.reloader.abort();
    }
}

/// Reloads the certificate when the files change or SIGHUP arrives, for as long as the server runs.
async fn follow(store: Arc<CertStore>, period: Duration, hangup: Signal) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The first tick is immediate, and the files were just read.
    ticks.tick().await;
    let mut hangup = Some(hangup);
    loop {
        let hung_up = async {
            match hangup.as_mut() {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ticks.tick() => {
                if let Some(result) = store.reload_if_changed() {
                    report(&store, result, "the files changed");
                }
            }
            received = hung_up => match received {
                Some(()) => report(&store, store.reload(), "SIGHUP"),
                // The signal driver is gone (the runtime is stopping): polling alone goes on.
                None => hangup = None,
            },
        }
    }
}

fn report(store: &CertStore, result: Result<(), TlsError>, why: &str) {
    let cert = store.files().cert.display();
    match result {
        Ok(()) => tracing::info!(%cert, "TLS certificate reloaded ({why}); new connections get it"),
        Err(error) => tracing::error!(%cert, "TLS certificate not reloaded ({why}), the previous one stays: {error}"),
    }
}
