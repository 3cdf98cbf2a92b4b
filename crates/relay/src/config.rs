//! How a relay is configured. Every field has a production-sensible default so tests and `skytale dev` only set
//! what they care about (usually `listen` and `data_dir`).

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use skytale_tls_server::TlsFiles;

use crate::nats::{LogStreamConfig, NatsServers};
use crate::RelayAuth;

/// Default retention: messages older than a week are dropped (docs/relay.md, "Retention").
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Default [`RelayConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default [`RelayConfig::max_connections_per_ip`].
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;
/// Default [`RelayConfig::max_streams_per_connection`]: the smallest limit RFC 9113 recommends. A client needs
/// one stream; the limit only bounds what one connection can make the relay hold.
pub const DEFAULT_MAX_STREAMS_PER_CONNECTION: u32 = 100;
/// Default [`RelayConfig::handshake_timeout`].
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default [`RelayConfig::keepalive_interval`].
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// Default [`RelayConfig::keepalive_timeout`].
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Channels one account may create, with auth on (`--max-channels-per-account`).
pub const DEFAULT_MAX_CHANNELS_PER_ACCOUNT: u64 = 1_000;
/// Channels the accounts of one org may create together, with auth on (`--max-channels-per-org`).
pub const DEFAULT_MAX_CHANNELS_PER_ORG: u64 = 10_000;
/// Default [`RelayConfig::max_subscriptions_per_stream`]. A client carries every channel it follows on one
/// stream, so this is far above what an agent follows; it bounds what one stream can make the relay hold.
pub const DEFAULT_MAX_SUBSCRIPTIONS_PER_STREAM: usize = 4096;
/// Default [`RelayConfig::max_names_per_stream`]: room for every subscription plus as many channels that are only
/// published to or queried.
pub const DEFAULT_MAX_NAMES_PER_STREAM: usize = 4 * DEFAULT_MAX_SUBSCRIPTIONS_PER_STREAM;
/// Default [`RelayConfig::idle_stream_timeout`]. Clients reconnect on their own, so a stream closed for idling
/// costs a client that starts using a channel later only a reconnect.
pub const DEFAULT_IDLE_STREAM_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Default [`RelayConfig::token_grace`]. Clients refresh at two thirds of a token's life, so a legitimate stream
/// reaches this only when it could not refresh (the API unreachable) for the last third and the clock leeway.
pub const DEFAULT_TOKEN_GRACE: Duration = Duration::from_secs(60);
/// Default [`RelayConfig::max_in_flight_per_connection`]: 16 MiB, a dozen maximal messages or a few catch-up
/// batches; a client reading at network speed never has this much unsent.
pub const DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION: usize = 16 << 20;
/// Default [`RelayConfig::max_in_flight_per_account`]: 256 MiB, sixteen connections' worth, so one stalled
/// process of an account does not hold up its others.
pub const DEFAULT_MAX_IN_FLIGHT_PER_ACCOUNT: usize = 256 << 20;

/// Default [`RelayConfig::max_streams_per_account`]. A client process carries all its channels on one stream, so
/// this is a thousand agents of one account online at once; it bounds the tasks and buffers one account can make
/// the relay hold, which the per-IP connection cap does not when the account connects from many addresses.
pub const DEFAULT_MAX_STREAMS_PER_ACCOUNT: usize = 1024;

/// How fast one account may publish, counted over all its streams (authenticated streams only): two token
/// buckets, messages and bytes of MLS messages (`app_payload.blob`, what `max_payload` limits), each refilling at
/// its rate up to its burst. A publish over either is refused with `quota_exceeded` before it reaches the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishRate {
    pub messages_per_second: NonZeroU32,
    pub message_burst: NonZeroU32,
    pub bytes_per_second: NonZeroU32,
    /// At least `max_payload` ([`Relay::start`](crate::Relay::start) checks), or a maximal message could never
    /// pass.
    pub bytes_burst: NonZeroU32,
}

impl Default for PublishRate {
    /// 1 000 messages a second sustained and 10 000 at once; 16 MiB a second and 64 MiB at once. Abuse
    /// protection, not metering: an agent sends a few messages a second, and the bursts let an account pour out
    /// a backlog (`send_many` of thousands, 64 maximal messages) at full speed, while one account can no longer
    /// keep the single log writer busy for everyone.
    fn default() -> Self {
        let non_zero = |n| NonZeroU32::new(n).expect("non-zero");
        Self {
            messages_per_second: non_zero(1_000),
            message_burst: non_zero(10_000),
            bytes_per_second: non_zero(16 << 20),
            bytes_burst: non_zero(64 << 20),
        }
    }
}
/// Default [`RelayConfig::drain_timeout`]: ample for in-flight appends (milliseconds each) and their acks to
/// reach clients that read, and well inside the 30 s an orchestrator usually allows between SIGTERM and SIGKILL
/// (Kubernetes' default `terminationGracePeriodSeconds`), so the relay exits on its own, its log closed cleanly.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How hard SQLite works to make an acknowledged append survive a crash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// WAL with `synchronous=NORMAL`: an acknowledged message survives a crash or SIGKILL of the relay process;
    /// the last transactions may be lost if the whole machine loses power.
    #[default]
    Normal,
    /// WAL with `synchronous=FULL`: every commit is fsynced, so acknowledged messages also survive power loss,
    /// at the cost of one fsync per write batch.
    Full,
}

/// Everything [`Relay::start`](crate::Relay::start) needs.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Address to listen on; port 0 picks a free port (see [`RelayHandle::local_addr`](crate::RelayHandle)).
    pub listen: SocketAddr,
    /// Directory holding the message log (`relay.sqlite3` and its WAL files) with [`LogStore::Embedded`]; created if
    /// missing, and locked while the relay runs.
    pub data_dir: PathBuf,
    /// Where the channel log lives.
    pub store: LogStore,
    /// Largest accepted `app_payload.blob`, in bytes.
    pub max_payload: usize,
    /// Messages older than this are removed from the log.
    pub retention: Duration,
    /// When set, each channel keeps at most this many bytes of stored frames; the oldest go first.
    pub retention_bytes: Option<u64>,
    /// Durability of acknowledged appends.
    pub sync: SyncMode,
    /// Stream authentication. [`RelayConfig::new`] leaves it at [`RelayAuth::None`] so in-process tests can
    /// use anonymous streams; anything reachable by others must set [`RelayAuth::Jwt`] (`skytale relay` does by
    /// default).
    pub auth: RelayAuth,
    /// Open connections at most, counted from accept on, before any authentication; beyond it a new
    /// connection is closed at once (docs/relay.md, "Connection limits").
    pub max_connections: usize,
    /// Open connections at most from one peer IP address, counted the same way.
    pub max_connections_per_ip: usize,
    /// Concurrent streams per connection, advertised in HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`.
    pub max_streams_per_connection: u32,
    /// A connection that has not sent the HTTP/2 client preface this long after it was accepted is closed.
    pub handshake_timeout: Duration,
    /// The relay pings a connection it has heard nothing from for this long...
    pub keepalive_interval: Duration,
    /// ...and closes it if the ping is not answered within this.
    pub keepalive_timeout: Duration,
    /// How many channels an account, and an org, may create (auth on: channels created with auth off have no
    /// account to count against). Every channel costs the relay a row in memory from start to stop.
    pub channel_quota: ChannelQuota,
    /// Subscriptions at most on one stream; beyond, a new one is refused with `quota_subscriptions`
    /// (docs/protocol.md, "Stream limits").
    pub max_subscriptions_per_stream: usize,
    /// Distinct channel names at most one stream may use (subscribe to, publish to or query) over its life;
    /// beyond, a frame naming a new one is refused with `quota_names`.
    pub max_names_per_stream: usize,
    /// A stream without a subscription that has had no publish or head query acted on for this long is ended
    /// (`idle_timeout`).
    pub idle_stream_timeout: Duration,
    /// A stream whose token expired (clock leeway included) gets no deliveries until it refreshes in-band, and is
    /// ended if it has not refreshed this long after the expiry.
    pub token_grace: Duration,
    /// Streams one account may have open at once (auth on); beyond, a new stream is refused at open with
    /// `quota_exceeded` (docs/protocol.md, "Stream limits").
    pub max_streams_per_account: usize,
    /// How fast one account may publish (auth on).
    pub publish_rate: PublishRate,
    /// Bytes of deliveries read and not yet written to the socket, at most, on one connection; a subscriber
    /// over it waits (docs/relay.md, "Memory and backpressure").
    pub max_in_flight_per_connection: usize,
    /// The same, for all the streams of one account together (authenticated streams only).
    pub max_in_flight_per_account: usize,
    /// Where to serve `/healthz`, `/readyz` and `/metrics` (docs/operations.md, "Health and metrics"); `None`
    /// (the default) serves them nowhere. `skytale dev` leaves it `None` and serves the relay's
    /// [`admin_component`](crate::RelayHandle::admin_component) on its own admin listener.
    pub admin_listen: Option<SocketAddr>,
    /// Serve TLS with this certificate and key (docs/operations.md, "TLS"); `None` (the default) serves plain
    /// HTTP/2. The handshake counts against the connection caps and must end within `handshake_timeout`, like
    /// the HTTP/2 preface after it; the files are re-read when they change and on SIGHUP.
    pub tls: Option<TlsFiles>,
    /// How long [`RelayHandle::shutdown`](crate::RelayHandle::shutdown) lets open streams drain (their owed acks
    /// written, then the `draining` notice) and clients close their connections; connections still open then are
    /// cut (docs/operations.md, "Graceful drain").
    pub drain_timeout: Duration,
}

/// Where a relay keeps its channel log (docs/relay.md, "Storage").
#[derive(Clone, Debug, Default)]
pub enum LogStore {
    /// One SQLite database in [`RelayConfig::data_dir`]: the default, for one relay.
    #[default]
    Embedded,
    /// A stream on a NATS JetStream cluster: every relay configured with the same servers and stream is one
    /// Delivery Service.
    JetStream { servers: NatsServers, stream: LogStreamConfig },
}

/// Caps on channel creation, counted over every channel the relay stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelQuota {
    pub per_account: u64,
    pub per_org: u64,
}

impl Default for ChannelQuota {
    fn default() -> Self {
        Self { per_account: DEFAULT_MAX_CHANNELS_PER_ACCOUNT, per_org: DEFAULT_MAX_CHANNELS_PER_ORG }
    }
}

impl RelayConfig {
    /// A configuration with the defaults: 1 MiB payloads, 7 days retention, no size cap, `SyncMode::Normal`,
    /// no authentication, the connection and stream limits and the drain timeout of the `DEFAULT_*` constants, no
    /// admin listener and no TLS.
    pub fn new(listen: SocketAddr, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen,
            data_dir: data_dir.into(),
            store: LogStore::Embedded,
            max_payload: skytale_proto::meta::DEFAULT_MAX_PAYLOAD,
            retention: DEFAULT_RETENTION,
            retention_bytes: None,
            sync: SyncMode::default(),
            auth: RelayAuth::None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            max_streams_per_connection: DEFAULT_MAX_STREAMS_PER_CONNECTION,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            keepalive_interval: DEFAULT_KEEPALIVE_INTERVAL,
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            channel_quota: ChannelQuota::default(),
            max_subscriptions_per_stream: DEFAULT_MAX_SUBSCRIPTIONS_PER_STREAM,
            max_names_per_stream: DEFAULT_MAX_NAMES_PER_STREAM,
            idle_stream_timeout: DEFAULT_IDLE_STREAM_TIMEOUT,
            token_grace: DEFAULT_TOKEN_GRACE,
            max_streams_per_account: DEFAULT_MAX_STREAMS_PER_ACCOUNT,
            publish_rate: PublishRate::default(),
            max_in_flight_per_connection: DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
            max_in_flight_per_account: DEFAULT_MAX_IN_FLIGHT_PER_ACCOUNT,
            admin_listen: None,
            tls: None,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}
