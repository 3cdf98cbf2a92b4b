//! How a relay is configured. Every field has a production-sensible default so tests and `skytale dev` only set
//! what they care about (usually `listen` and `data_dir`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Directory holding the message log (`relay.sqlite3` and its WAL files); created if missing.
    pub data_dir: PathBuf,
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
}

impl RelayConfig {
    /// A configuration with the defaults: 1 MiB payloads, 7 days retention, no size cap, `SyncMode::Normal`,
    /// no authentication, and the connection limits of the `DEFAULT_*` constants.
    pub fn new(listen: SocketAddr, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen,
            data_dir: data_dir.into(),
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
        }
    }
}
