//! Command-line interface of `skytale`, declared with clap.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use skytale_api::ApiQuotas;
use skytale_relay::{NatsServers, PublishRate};
use skytale_tls_server::TlsFiles;

use crate::duration::{parse_duration, parse_nonzero_duration};
use crate::org::parse_org;

#[derive(Debug, Parser)]
#[command(name = "skytale", version, about = "Skytale: encrypted channels for AI agents")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process and matched at once: the size of the largest variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the relay (SLIM data plane + MLS Delivery Service).
    Relay(RelayArgs),
    /// Run a local development stack on 127.0.0.1: relay (auth on) and API server, embedded stores.
    Dev(DevArgs),
    /// Run the API server (accounts, API keys, tokens, invites).
    Api(ApiArgs),
    /// Create or revoke API keys directly in the API's database; rotate and retire the API's signing keys.
    Keys(KeysArgs),
    /// Run the MCP server exposing Skytale channels as tools (Python: `skytale_sdk.mcp_server`).
    Mcp(McpArgs),
}

#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub listen: SocketAddr,
    /// Directory for the message log [default: ~/.skytale/relay].
    #[arg(long, conflicts_with = "store")]
    pub data_dir: Option<PathBuf>,
    /// Keep the message log on a NATS JetStream cluster instead of the data directory, e.g.
    /// nats://10.0.0.1:4222,10.0.0.2:4222: every relay given the same servers and stream is one Delivery Service
    /// (nats-server 2.11 or later; for now with --auth none only).
    #[arg(long, value_parser = parse_nats_servers)]
    pub store: Option<NatsServers>,
    /// The JetStream stream holding the log (with --store); created if missing.
    #[arg(long, default_value = skytale_relay::DEFAULT_LOG_STREAM)]
    pub nats_stream: String,
    /// Copies JetStream keeps of the log stream (with --store): 3 in a cluster, so losing a server loses nothing.
    #[arg(long, default_value_t = 1, value_parser = parse_positive::<usize>)]
    pub nats_replicas: usize,
    /// How long JetStream remembers a message id (with --store), so a publish retried through any relay within it
    /// is stored once, e.g. 2m.
    #[arg(long, default_value = "2m", value_parser = parse_nonzero_duration)]
    pub nats_duplicate_window: Duration,
    /// Largest accepted MLS message, in bytes.
    #[arg(long, default_value_t = skytale_relay::DEFAULT_MAX_PAYLOAD)]
    pub max_payload: usize,
    /// How long messages are kept, e.g. 7d, 12h, 30m, 45s.
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    pub retention: Duration,
    /// Keep at most this many bytes of messages per channel (oldest dropped first).
    #[arg(long)]
    pub retention_bytes: Option<u64>,
    /// Durability of acknowledged messages: `normal` survives a relay crash, `full` also a power loss.
    #[arg(long, value_enum, default_value_t = Sync::Normal)]
    pub sync: Sync,
    /// Stream authentication: `jwt` verifies the API's access tokens (needs --jwks-url or --jwt-key-file);
    /// `none` accepts anonymous streams and is for local development only.
    #[arg(long, value_enum, default_value_t = Auth::Jwt)]
    pub auth: Auth,
    /// The API's public key set, e.g. http://127.0.0.1:8080/.well-known/jwks.json; fetched at start, again when a
    /// token names an unknown key (at most every 10 s), every --jwks-refresh-interval, and on SIGHUP.
    #[arg(long, conflicts_with = "jwt_key_file")]
    pub jwks_url: Option<String>,
    /// How often the key set of --jwks-url is fetched again, so a retired key stops verifying, e.g. 5m.
    #[arg(long, default_value = "5m", value_parser = parse_nonzero_duration, requires = "jwks_url")]
    pub jwks_refresh_interval: Duration,
    /// CA certificates (PEM) to trust for --jwks-url besides the public roots, for an API whose certificate a
    /// private CA issued (e.g. `skytale dev --tls`'s SKYTALE_CA_FILE); read at every fetch.
    #[arg(long, requires = "jwks_url")]
    pub jwks_ca_file: Option<PathBuf>,
    /// The API's signing key file (PKCS#8 PEM, mode 0600), for a relay on the API's host; read again when it
    /// changes and on SIGHUP.
    #[arg(long)]
    pub jwt_key_file: Option<PathBuf>,
    /// Open connections at most, authenticated or not; beyond it new ones are closed at once.
    #[arg(long, default_value_t = skytale_relay::DEFAULT_MAX_CONNECTIONS, value_parser = parse_positive::<usize>)]
    pub max_connections: usize,
    /// Open connections at most from one IP address.
    #[arg(long, default_value_t = skytale_relay::DEFAULT_MAX_CONNECTIONS_PER_IP, value_parser = parse_positive::<usize>)]
    pub max_connections_per_ip: usize,
    /// Concurrent streams per connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS).
    #[arg(long, default_value_t = skytale_relay::DEFAULT_MAX_STREAMS_PER_CONNECTION, value_parser = parse_positive::<u32>)]
    pub max_streams_per_connection: u32,
    /// A connection that has not sent the HTTP/2 preface this long after it was accepted is closed, e.g. 5s.
    #[arg(long, default_value = "5s", value_parser = parse_nonzero_duration)]
    pub handshake_timeout: Duration,
    /// Channels one account may create (auth on).
    #[arg(long, default_value_t = skytale_relay::DEFAULT_MAX_CHANNELS_PER_ACCOUNT, value_parser = parse_positive::<u64>)]
    pub max_channels_per_account: u64,
    /// Channels the accounts of one org may create together (auth on).
    #[arg(long, default_value_t = skytale_relay::DEFAULT_MAX_CHANNELS_PER_ORG, value_parser = parse_positive::<u64>)]
    pub max_channels_per_org: u64,
    /// Subscriptions at most on one stream; beyond, a new one is refused with `quota_subscriptions`.
    #[arg(long, default_value_t = skytale_relay::DEFAULT_MAX_SUBSCRIPTIONS_PER_STREAM, value_parser = parse_positive::<usize>)]
    pub max_subscriptions_per_stream: usize,
    /// Distinct channel names one stream may subscribe to, publish to or query; beyond, `quota_names`.
    #[arg(long, default_value_t = skytale_relay::DEFAULT_MAX_NAMES_PER_STREAM, value_parser = parse_positive::<usize>)]
    pub max_names_per_stream: usize,
    /// A stream without a subscription that sends no publish or head query for this long is closed, e.g. 5m.
    #[arg(long, default_value = "5m", value_parser = parse_nonzero_duration)]
    pub idle_stream_timeout: Duration,
    /// A stream whose token expired gets no deliveries until it refreshes, and is closed this long after, e.g. 60s.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub token_grace: Duration,
    /// Bytes of deliveries read but not yet sent, at most, per connection; a subscriber over it waits.
    #[arg(long, default_value_t = skytale_relay::DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION, value_parser = parse_positive::<usize>)]
    pub max_in_flight_per_connection: usize,
    /// The same, for all connections of one account together.
    #[arg(long, default_value_t = skytale_relay::DEFAULT_MAX_IN_FLIGHT_PER_ACCOUNT, value_parser = parse_positive::<usize>)]
    pub max_in_flight_per_account: usize,
    #[command(flatten)]
    pub account_quotas: AccountQuotaArgs,
    /// Serve /healthz, /readyz and /metrics (Prometheus) on this address, e.g. 127.0.0.1:9090 (port 0 picks a
    /// free one, logged); off unless given.
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,
    /// On SIGTERM or SIGINT, how long open streams get to receive their acks and clients to close their
    /// connections before the rest are cut, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// The relay's limits per account (auth on), shared by `skytale relay` and `skytale dev`.
#[derive(Debug, Args)]
pub struct AccountQuotaArgs {
    /// Streams one account may have open at once (auth on); beyond, a new stream is refused with `quota_exceeded`.
    #[arg(long, default_value_t = skytale_relay::DEFAULT_MAX_STREAMS_PER_ACCOUNT, value_parser = parse_positive::<usize>)]
    pub max_streams_per_account: usize,
    /// Messages one account may publish per second, sustained (auth on); beyond, `quota_exceeded`.
    #[arg(long, default_value_t = PublishRate::default().messages_per_second, value_parser = parse_non_zero)]
    pub publishes_per_second: NonZeroU32,
    /// Messages one account may publish at once after a quiet spell.
    #[arg(long, default_value_t = PublishRate::default().message_burst, value_parser = parse_non_zero)]
    pub publish_burst: NonZeroU32,
    /// Bytes of MLS messages one account may publish per second, sustained.
    #[arg(long, default_value_t = PublishRate::default().bytes_per_second, value_parser = parse_non_zero)]
    pub publish_bytes_per_second: NonZeroU32,
    /// Bytes of MLS messages one account may publish at once; at least --max-payload.
    #[arg(long, default_value_t = PublishRate::default().bytes_burst, value_parser = parse_non_zero)]
    pub publish_bytes_burst: NonZeroU32,
}

impl AccountQuotaArgs {
    pub fn publish_rate(&self) -> PublishRate {
        PublishRate {
            messages_per_second: self.publishes_per_second,
            message_burst: self.publish_burst,
            bytes_per_second: self.publish_bytes_per_second,
            bytes_burst: self.publish_bytes_burst,
        }
    }
}

/// A server's certificate and key, both or neither (clap refuses one without the other).
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// Serve TLS with this certificate chain (PEM, the server's own certificate first); needs --tls-key. Both
    /// files are re-read when they change and on SIGHUP: new connections get the new certificate.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1); needs --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The files to serve TLS with, or `None` for plain text.
    pub fn files(&self) -> Option<TlsFiles> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles::new(cert, key)),
            // One without the other is refused by clap (`requires`).
            _ => None,
        }
    }
}

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Directory for every local store [default: ~/.skytale/dev].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Relay port on 127.0.0.1 (0 picks a free port).
    #[arg(long, default_value_t = 5000)]
    pub relay_port: u16,
    /// API server port on 127.0.0.1 (0 picks a free port).
    #[arg(long, default_value_t = 8080)]
    pub api_port: u16,
    /// Org of the dev account: its API key may create every channel `ORG/*/*`.
    #[arg(long, default_value = "myorg", value_parser = parse_org)]
    pub org: String,
    /// Serve /healthz, /readyz and /metrics of the relay and the API together on this address, e.g.
    /// 127.0.0.1:9090 (port 0 picks a free one, logged: stdout keeps its three lines); off unless given.
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,
    /// Serve the relay and the API over TLS (https://), with a local CA and a certificate for localhost and
    /// 127.0.0.1 created under --dir on first use (DIR/ca.pem, DIR/tls/); prints a fourth line,
    /// `export SKYTALE_CA_FILE=DIR/ca.pem`, which clients need to trust it.
    #[arg(long)]
    pub tls: bool,
    #[command(flatten)]
    pub account_quotas: AccountQuotaArgs,
}

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = skytale_api::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Directory for the default database and signing key [default: ~/.skytale/api].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://...` [default: sqlite://DATA_DIR/api.db].
    #[arg(long)]
    pub database_url: Option<String>,
    /// Ed25519 signing key (PKCS#8 PEM, 0600), created if missing [default: DATA_DIR/api-signing-key.pem].
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// How long an access token is valid, e.g. 15m; a revoked key's relay streams end at most this long (plus
    /// the relay's clock leeway and --token-grace) after the revocation.
    #[arg(long, default_value = "15m", value_parser = parse_nonzero_duration)]
    pub token_lifetime: Duration,
    /// Serve /healthz, /readyz and /metrics (Prometheus) on this address, e.g. 127.0.0.1:9090 (port 0 picks a
    /// free one, logged); off unless given.
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,
    /// Requests one account may make per second, sustained; beyond it, 429 with Retry-After.
    #[arg(long, default_value_t = ApiQuotas::default().requests_per_second)]
    pub requests_per_second: NonZeroU32,
    /// Requests one account may make at once after a quiet spell.
    #[arg(long, default_value_t = ApiQuotas::default().request_burst)]
    pub request_burst: NonZeroU32,
    /// Invites one account may create per hour.
    #[arg(long, default_value_t = ApiQuotas::default().invites_per_hour)]
    pub invites_per_hour: NonZeroU32,
    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an account in ORG and print its new API key.
    Create {
        /// Org of the new account: the key may create every channel `ORG/*/*`.
        #[arg(long, value_parser = parse_org)]
        org: String,
        /// Name of the new account (a label for people).
        #[arg(long, default_value = "cli")]
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Revoke an API key by its id (printed by `keys create`); tokens already issued expire within 15 minutes.
    Revoke {
        /// The key id, `key_...`.
        key_id: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Add a new signing key to the API's key file and print its id: the running API signs with it within 2 s
    /// (at once on SIGHUP), relays learn it from the first token it signed.
    RotateSigningKey {
        #[command(flatten)]
        key_file: KeyFileArgs,
    },
    /// Remove an old signing key from the API's key file, once every token it signed has expired (the API's
    /// --token-lifetime, 15m by default, plus 30 s after the rotation); its tokens are refused from then on.
    RetireSigningKey {
        /// The key id (kid) to remove, as `rotate-signing-key` printed it; the newest key cannot be retired.
        kid: String,
        #[command(flatten)]
        key_file: KeyFileArgs,
    },
}

/// Where the API's signing-key file is, for the commands that change it.
#[derive(Debug, Args)]
pub struct KeyFileArgs {
    /// The API's signing-key file, as given to `skytale api --key-file` [default: DATA_DIR/api-signing-key.pem].
    #[arg(long, conflicts_with = "data_dir")]
    pub key_file: Option<PathBuf>,
    /// The API server's data directory [default: ~/.skytale/api].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Where the API's database is, for commands that use it without the server.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// `sqlite://PATH` or `postgres://...` [default: sqlite://DATA_DIR/api.db].
    #[arg(long, conflicts_with = "data_dir")]
    pub database_url: Option<String>,
    /// The API server's data directory [default: ~/.skytale/api].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Everything after `skytale mcp` goes to the Python server unchanged (`skytale mcp --help` is its help).
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct McpArgs {
    /// The server's arguments: --transport stdio|streamable-http, --host, --port, --path, --identity.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Sync {
    Normal,
    Full,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Auth {
    /// Verify the API's access tokens on every stream.
    Jwt,
    /// Accept anonymous streams (local development only).
    None,
}

impl From<Sync> for skytale_relay::SyncMode {
    fn from(sync: Sync) -> Self {
        match sync {
            Sync::Normal => skytale_relay::SyncMode::Normal,
            Sync::Full => skytale_relay::SyncMode::Full,
        }
    }
}

/// A whole number of at least 1: a limit of 0 would refuse everything.
fn parse_nats_servers(text: &str) -> Result<NatsServers, String> {
    NatsServers::parse(text).map_err(|error| error.to_string())
}

fn parse_positive<T: FromStr + Default + PartialEq>(text: &str) -> Result<T, String> {
    match text.parse::<T>() {
        Ok(value) if value != T::default() => Ok(value),
        Ok(_) => Err("must be at least 1".to_owned()),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

/// A count of at least 1, as the token buckets take it; refused in the same words as [`parse_positive`].
fn parse_non_zero(text: &str) -> Result<NonZeroU32, String> {
    parse_positive::<u32>(text).map(|n| NonZeroU32::new(n).expect("at least 1"))
}
