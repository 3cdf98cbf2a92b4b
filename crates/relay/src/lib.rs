//! Skytale relay: an AGNTCY SLIM data-plane endpoint (`DataPlaneService/OpenChannel`) that is also the MLS
//! Delivery Service of every channel it carries (`docs/protocol.md`, "Delivery-Service rules").
//!
//! Reading order follows the path of a message:
//! [`incoming`] accepts a connection → [`service`] accepts a stream → [`session`] reads its frames, each into a
//! [`request`] → [`publish`] validates a publish (with [`mls_framing`]) → the channel [`log`] (by default
//! [`sqlite_log`]) numbers it, checks its epoch and its channel's MLS group ([`membership`]) and makes it durable →
//! [`channel`] wakes the channel's subscribers → each [`subscription`] cursor
//! delivers it. [`retention`] trims the log; [`auth`] is where a stream's identity is decided, with the keys
//! [`trusted_keys`] keeps up with the API's (fetched by [`jwks`]); [`stream_guard`] holds each stream to its
//! limits, [`quotas`] each account to its own, and [`inflight`] bounds what deliveries may wait unsent, per
//! connection and account; [`drain`] is what streams are told when the relay stops; [`metrics`] names every series
//! the admin listener exports; [`fuzzing`] runs the input handling for the fuzz targets.
//!
//! ```no_run
//! # async fn demo() -> Result<(), skytale_relay::RelayError> {
//! let config = skytale_relay::RelayConfig::new("127.0.0.1:0".parse().unwrap(), "/tmp/relay");
//! let relay = skytale_relay::Relay::start(config).await?;
//! println!("listening on {}", relay.local_addr());
//! relay.shutdown().await;
//! # Ok(()) }
//! ```

mod access;
mod admission;
mod append;
mod auth;
mod channel;
mod codec;
mod config;
mod drain;
mod error;
mod frames;
#[doc(hidden)]
pub mod fuzzing;
mod incoming;
mod inflight;
mod jetstream_log;
mod jwks;
mod log;
mod membership;
mod metrics;
pub mod mls_framing;
mod nats;
mod publish;
mod quotas;
mod request;
mod retention;
mod service;
mod session;
mod sqlite_log;
mod stored;
mod stream_guard;
mod subscription;
mod trusted_keys;

use std::net::SocketAddr;
use std::sync::Arc;

use skytale_admin::{AdminHandle, AdminServer, AtomicHistogram, Component};
use skytale_dir_lock::DirLock;
use skytale_tls_server::{ServerTls, ALPN_H2};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

pub use auth::RelayAuth;
pub use config::{
    ChannelQuota, LogStore, PublishRate, RelayConfig, SyncMode, DEFAULT_DRAIN_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_IDLE_STREAM_TIMEOUT, DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_MAX_CHANNELS_PER_ACCOUNT, DEFAULT_MAX_CHANNELS_PER_ORG, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_IP, DEFAULT_MAX_IN_FLIGHT_PER_ACCOUNT, DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
    DEFAULT_MAX_NAMES_PER_STREAM, DEFAULT_MAX_STREAMS_PER_ACCOUNT, DEFAULT_MAX_STREAMS_PER_CONNECTION,
    DEFAULT_MAX_SUBSCRIPTIONS_PER_STREAM, DEFAULT_RETENTION, DEFAULT_TOKEN_GRACE,
};
pub use error::RelayError;
pub use jwks::{
    fetch_verifier, JwksError, JwksFollow, DEFAULT_JWKS_REFRESH_INTERVAL, DEFAULT_JWKS_UNKNOWN_KID_INTERVAL,
};
/// The MLS external observer the log writer validates handshakes with: public so that its cost can be measured
/// on its own (`skytale-bench group-scaling`).
pub use membership::{MemberKey, ObservedGroup, Observer};
/// The NATS JetStream cluster a log can live on (`skytale relay --store nats://...`, docs/relay.md, "NATS
/// JetStream"): public because the server list, the version and JetStream checks and the stream's configuration are
/// the embedder's to choose and to see refused.
pub use nats::{
    check_server_version, connect as connect_nats, is_wrong_last_sequence, JetStreamConnection, LogStreamConfig,
    NatsError, NatsServers, ServerVersion, DEFAULT_LOG_DUPLICATE_WINDOW, DEFAULT_LOG_STREAM,
    DEFAULT_LOG_SUBJECT_PREFIX, DEFAULT_NATS_CONNECT_TIMEOUT, MIN_NATS_SERVER_VERSION,
};
/// The verifier [`RelayAuth::Jwt`] holds, re-exported so embedders need not depend on `skytale-auth` directly.
pub use skytale_auth::{KeyError, TokenVerifier};
pub use skytale_proto::meta::DEFAULT_MAX_PAYLOAD;
/// [`RelayConfig::tls`]'s type and what it can fail with, re-exported so embedders need not depend on
/// `skytale-tls-server` directly.
pub use skytale_tls_server::{TlsError, TlsFiles};
pub use sqlite_log::DB_FILE;
pub use trusted_keys::{KeyReloadError, TrustedKeys};

use inflight::InFlight;
use jetstream_log::JetStreamLog;
use log::{ChannelLog, WriteRules};
use metrics::RelayMetrics;
use quotas::AccountQuotas;
use retention::RetentionPolicy;
use session::Shared;
use sqlite_log::SqliteLog;
use stream_guard::StreamLimits;

/// Room above `max_payload` for the rest of a frame (header, names, metadata). A frame larger than the payload
/// limit plus this is refused by gRPC itself; anything smaller reaches the relay, which answers an oversize
/// blob with a `payload_too_large` error frame naming both sizes.
const FRAME_OVERHEAD: usize = 64 * 1024;

/// How long [`RelayHandle::shutdown`] waits for the connections it cut (at the end of the drain timeout) to close:
/// a cut connection fails at its next read or write, which it is woken for at once.
const CUT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts relays.
pub struct Relay;

/// A running relay. Dropping it leaves the relay running until the runtime stops; call
/// [`shutdown`](Self::shutdown) to stop it cleanly.
pub struct RelayHandle {
    local_addr: SocketAddr,
    /// Turned true when the drain begins: the accept loop, every session and the server's connections watch it.
    stop: watch::Sender<bool>,
    /// Cancelled at the end of the drain timeout: every connection still open fails (`incoming`).
    cut: CancellationToken,
    drain_timeout: std::time::Duration,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    retention: JoinHandle<()>,
    log: Arc<dyn ChannelLog>,
    in_flight: Arc<InFlight>,
    metrics: Arc<RelayMetrics>,
    component: Component,
    admin: Option<AdminHandle>,
    /// The certificate in service and its reloading, with [`RelayConfig::tls`]; reloading stops with the handle.
    _tls: Option<ServerTls>,
    auth: RelayAuth,
    /// Follows the trusted keys' source (`trusted_keys`) with JWT auth.
    key_follower: Option<JoinHandle<()>>,
    /// With the embedded log, held until [`shutdown`](Self::shutdown) has stopped the log writer (or the handle is
    /// dropped).
    _data_dir_lock: Option<DirLock>,
}

impl Relay {
    /// Opens (or creates) the log `config.store` names, applies retention once, and starts serving on
    /// `config.listen`. Returns once the relay accepts connections.
    pub async fn start(config: RelayConfig) -> Result<RelayHandle, RelayError> {
        // First: a contradictory configuration is refused before anything is opened.
        let quotas =
            Arc::new(AccountQuotas::new(config.max_streams_per_account, config.publish_rate, config.max_payload)?);
        // Before the log is opened, so wrong files are reported before anything else starts.
        let tls = config.tls.as_ref().map(|files| ServerTls::start(files, &[ALPN_H2])).transpose()?;
        let follows_groups = matches!(config.auth, RelayAuth::Jwt(_));
        let rules = WriteRules { follow_groups: follows_groups, channel_quota: config.channel_quota };
        let (metrics, registry) = RelayMetrics::new();
        let metrics = Arc::new(metrics);
        let (log, data_dir_lock) = open_log(&config, rules, metrics.append_latency.clone()).await?;
        let policy = RetentionPolicy { max_age: config.retention, max_bytes: config.retention_bytes };
        // Subscriptions must never see messages that are past retention, so expire before serving.
        if let Err(error) = retention::sweep(log.as_ref(), policy, &metrics.retention_removed).await {
            log.stop().await;
            return Err(error);
        }
        let (stop, stop_signal) = watch::channel(false);
        let component = Component {
            name: "relay",
            registry: Arc::new(registry),
            readiness: readiness(Arc::clone(&log), stop_signal.clone()),
        };
        let admin = match AdminServer::start_if(config.admin_listen, vec![component.clone()]).await {
            Ok(admin) => admin,
            Err(error) => {
                log.stop().await;
                return Err(error.into());
            }
        };

        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(listener) => listener,
            Err(source) => {
                if let Some(admin) = admin {
                    admin.shutdown().await;
                }
                log.stop().await;
                return Err(RelayError::Listen { addr: config.listen, source });
            }
        };
        let local_addr = listener.local_addr().map_err(|source| RelayError::Listen { addr: config.listen, source })?;

        let in_flight = Arc::new(InFlight::new(config.max_in_flight_per_account));
        let shared = Arc::new(Shared {
            log: Arc::clone(&log),
            max_payload: config.max_payload,
            auth: config.auth.clone(),
            follows_groups,
            limits: StreamLimits {
                max_subscriptions: config.max_subscriptions_per_stream,
                max_names: config.max_names_per_stream,
                idle_timeout: config.idle_stream_timeout,
                token_grace: config.token_grace,
            },
            in_flight: Arc::clone(&in_flight),
            quotas: Arc::clone(&quotas),
            metrics: Arc::clone(&metrics),
        });
        let service = service::DataPlaneServer::new(
            shared,
            stop_signal.clone(),
            config.max_payload.saturating_add(FRAME_OVERHEAD),
        );
        let accept_policy = incoming::AcceptPolicy {
            max_connections: config.max_connections,
            max_connections_per_ip: config.max_connections_per_ip,
            handshake_timeout: config.handshake_timeout,
            in_flight_per_connection: config.max_in_flight_per_connection,
        };
        let acceptor = tls.as_ref().map(ServerTls::acceptor);
        let cut = CancellationToken::new();
        let admitted = incoming::accept(listener, accept_policy, acceptor, stop_signal.clone(), cut.clone());
        let incoming = ReceiverStream::new(admitted).map(Ok::<_, std::convert::Infallible>);
        let mut server_stop = stop_signal.clone();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .max_concurrent_streams(config.max_streams_per_connection)
                .http2_keepalive_interval(Some(config.keepalive_interval))
                .http2_keepalive_timeout(Some(config.keepalive_timeout))
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async move { stopped(&mut server_stop).await }),
        );
        let key_follower = match &config.auth {
            RelayAuth::Jwt(keys) => Some(tokio::spawn(Arc::clone(keys).follow(stop_signal.clone()))),
            RelayAuth::None => None,
        };
        tokio::spawn(quotas.forget_idle_accounts(stop_signal.clone()));
        let retention =
            tokio::spawn(retention::run(Arc::clone(&log), policy, metrics.retention_removed.clone(), stop_signal));
        tracing::info!(
            %local_addr,
            data_dir = %config.data_dir.display(),
            auth = ?config.auth,
            tls = tls.is_some(),
            "relay listening"
        );
        Ok(RelayHandle {
            local_addr,
            stop,
            cut,
            drain_timeout: config.drain_timeout,
            server,
            retention,
            log,
            in_flight,
            metrics,
            component,
            admin,
            _tls: tls,
            auth: config.auth,
            key_follower,
            _data_dir_lock: data_dir_lock,
        })
    }
}

/// Opens the log `config.store` names: the embedded one in the data directory, which it locks (one relay per
/// directory), or the JetStream one, which any number of relays share.
async fn open_log(
    config: &RelayConfig,
    rules: WriteRules,
    append_latency: AtomicHistogram,
) -> Result<(Arc<dyn ChannelLog>, Option<DirLock>), RelayError> {
    match &config.store {
        LogStore::Embedded => {
            std::fs::create_dir_all(&config.data_dir)
                .map_err(|source| RelayError::DataDir { path: config.data_dir.clone(), source })?;
            let lock = DirLock::acquire(&config.data_dir).map_err(RelayError::DataDirLocked)?;
            let log = SqliteLog::open(&config.data_dir, config.sync, rules, append_latency)?;
            Ok((Arc::new(log), Some(lock)))
        }
        LogStore::JetStream { servers, stream } => {
            if config.retention_bytes.is_some() {
                return Err(RelayError::JetStreamRetentionBytes);
            }
            let connection = nats::connect(servers, DEFAULT_NATS_CONNECT_TIMEOUT).await?;
            let log = JetStreamLog::open(connection, stream.clone(), rules, append_latency).await?;
            Ok((Arc::new(log), None))
        }
    }
}

/// The relay is ready while its log answers a new reader ([`ChannelLog::probe`]) and it is not draining (`draining`
/// turned true), so that a load balancer stops sending it clients as soon as the drain begins.
fn readiness(log: Arc<dyn ChannelLog>, draining: watch::Receiver<bool>) -> skytale_admin::Readiness {
    Arc::new(move || {
        let log = Arc::clone(&log);
        let draining = *draining.borrow();
        Box::pin(async move {
            if draining {
                return Err("draining: the relay is shutting down and takes no new connections".to_owned());
            }
            log.probe().await.map_err(|error| format!("the message log does not answer: {error}"))
        })
    })
}

/// Resolves once `shutdown` is (or becomes) true, or its sender is gone, which also means stop.
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|&stop| stop).await;
}

impl RelayHandle {
    /// The address the relay listens on (with the actual port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How many channels the relay holds in memory: one small record per channel with stored messages, plus
    /// one feed per other name while a subscription or a head query uses it (docs/relay.md, "Memory and
    /// backpressure"). For tests and diagnostics.
    pub fn channels_in_memory(&self) -> usize {
        self.log.channels_in_memory()
    }

    /// Bytes of deliveries read from the log and not yet written to a socket, on all connections together
    /// (docs/relay.md, "Memory and backpressure"). For tests and diagnostics.
    pub fn in_flight_bytes(&self) -> usize {
        self.in_flight.bytes()
    }

    /// The address of the admin listener (`/healthz`, `/readyz`, `/metrics`), if
    /// [`RelayConfig::admin_listen`] asked for one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(AdminHandle::local_addr)
    }

    /// The relay's metrics and readiness check, for an admin listener shared with other servers (`skytale dev`).
    pub fn admin_component(&self) -> Component {
        self.component.clone()
    }

    /// Learns the trusted keys again now, from the key file or the JWKS URL (`skytale relay` does on SIGHUP), rather
    /// than at the next look. Returns the ids of the keys trusted afterwards (none with auth off); on failure the
    /// keys in effect stay.
    pub async fn reload_keys(&self) -> Result<Vec<String>, KeyReloadError> {
        match &self.auth {
            RelayAuth::Jwt(keys) => keys.reload().await,
            RelayAuth::None => Ok(Vec::new()),
        }
    }

    /// Drains, then stops (docs/operations.md, "Graceful drain"). The drain: the listener closes (new connections
    /// are refused), `/readyz` answers 503 and `skytale_relay_draining` is 1; each connection gets an HTTP/2
    /// GOAWAY and new streams get the `draining` notice; each open stream stops reading, writes the acks of the
    /// publishes it took (they are committed by the log writer, still running) and ends with the notice. Once
    /// clients have closed their connections, or at [`RelayConfig::drain_timeout`] when some have not (a client
    /// that does not read), the remaining connections are cut. Then pending writes finish, the log closes and the
    /// admin listener stops.
    pub async fn shutdown(mut self) {
        tracing::info!(drain_timeout = ?self.drain_timeout, "relay draining");
        self.metrics.draining.set(1);
        self.stop.send_replace(true);
        let drained = match tokio::time::timeout(self.drain_timeout, &mut self.server).await {
            Ok(served) => Some(served),
            Err(_) => {
                tracing::warn!(drain_timeout = ?self.drain_timeout, "connections still open at the drain timeout, cutting them");
                self.cut.cancel();
                tokio::time::timeout(CUT_WAIT, &mut self.server).await.ok()
            }
        };
        match drained {
            Some(Ok(Ok(()))) => {}
            Some(Ok(Err(error))) => tracing::error!(%error, "relay server failed"),
            Some(Err(error)) => tracing::error!(%error, "relay server task failed"),
            None => {
                tracing::error!("connections still open {CUT_WAIT:?} after they were cut, dropping the server");
                self.server.abort();
            }
        }
        if let Err(error) = self.retention.await {
            tracing::error!(%error, "retention task failed");
        }
        if let Some(follower) = self.key_follower.take() {
            if let Err(error) = follower.await {
                tracing::error!(%error, "key follower task failed");
            }
        }
        self.log.stop().await;
        if let Some(admin) = self.admin.take() {
            admin.shutdown().await;
        }
        tracing::info!("relay stopped");
    }
}
