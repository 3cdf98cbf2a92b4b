//! Every series the relay exports on its admin listener's `/metrics` (docs/operations.md, "Health and
//! metrics"), named here and nowhere else.
//!
//! Label values come from fixed sets only (error codes, auth failure reasons, what a delivery waited for): never a
//! channel, org, account or token, so the number of series is the same with one channel or a million. Every
//! labelled counter is created up front and kept as a handle, so recording is one atomic addition: no lookup,
//! lock or allocation on the publish and delivery paths.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use skytale_admin::{AtomicHistogram, GaugeGuard};
use skytale_proto::meta::error_code;

/// Every error code a publish can be refused with (docs/protocol.md, "Errors").
const REFUSAL_CODES: [&str; 12] = [
    error_code::STALE_EPOCH,
    error_code::PAYLOAD_TOO_LARGE,
    error_code::BAD_MESSAGE,
    error_code::BAD_REQUEST,
    error_code::RETENTION_EXPIRED,
    error_code::UNAUTHORIZED,
    error_code::STORAGE,
    error_code::CHANNEL_EXISTS,
    error_code::QUOTA_EXCEEDED,
    error_code::QUOTA_SUBSCRIPTIONS,
    error_code::QUOTA_NAMES,
    error_code::IDLE_TIMEOUT,
];

/// Every error code a stream can be refused with at open, beyond authentication (counted in `auth_failures`).
const STREAM_REFUSAL_CODES: [&str; 2] = [error_code::QUOTA_EXCEEDED, error_code::DRAINING];

/// Bucket bounds of the append latency, in seconds: a batch commits in well under a millisecond unless SQLite
/// syncs or the writer is backed up, which the upper buckets show.
const APPEND_LATENCY_BOUNDS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

/// Why a stream's token or member proof was not accepted, at stream open or at an in-band refresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No token.
    Missing,
    /// Not a JWT of the expected shape, or not EdDSA.
    Malformed,
    /// Signed by an unknown key, or the signature does not verify.
    Forged,
    Expired,
    NotYetValid,
    /// Meant for another issuer or audience.
    WrongAudience,
    /// A refresh for another account than the stream's.
    OtherAccount,
    /// The member key and proof headers are missing one of the two, malformed or do not verify.
    MemberProof,
}

impl AuthFailure {
    const ALL: [AuthFailure; 8] = [
        AuthFailure::Missing,
        AuthFailure::Malformed,
        AuthFailure::Forged,
        AuthFailure::Expired,
        AuthFailure::NotYetValid,
        AuthFailure::WrongAudience,
        AuthFailure::OtherAccount,
        AuthFailure::MemberProof,
    ];

    fn label(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing_token",
            AuthFailure::Malformed => "malformed_token",
            AuthFailure::Forged => "forged_token",
            AuthFailure::Expired => "expired_token",
            AuthFailure::NotYetValid => "token_not_yet_valid",
            AuthFailure::WrongAudience => "wrong_audience",
            AuthFailure::OtherAccount => "other_account",
            AuthFailure::MemberProof => "bad_member_proof",
        }
    }
}

type Labels = [(&'static str, &'static str); 1];

/// The relay's series; cheap handles to share (each is an `Arc` inside).
pub struct RelayMetrics {
    streams_open: Gauge,
    subscriptions_open: Gauge,
    pub publishes_accepted: Counter,
    /// In [`REFUSAL_CODES`] order.
    publishes_refused: [Counter; REFUSAL_CODES.len()],
    pub append_latency: AtomicHistogram,
    pub deliveries: Counter,
    pub delivered_bytes: Counter,
    pub catch_up_reads: Counter,
    pub waits_for_stream_queue: Counter,
    pub waits_for_in_flight_budget: Counter,
    pub retention_removed: Counter,
    /// In [`AuthFailure::ALL`] order.
    auth_failures: [Counter; AuthFailure::ALL.len()],
    /// In [`STREAM_REFUSAL_CODES`] order.
    streams_refused: [Counter; STREAM_REFUSAL_CODES.len()],
    /// 1 from the start of a drain (`RelayHandle::shutdown`), else 0.
    pub draining: Gauge,
}

impl RelayMetrics {
    /// The series, registered in a new registry.
    pub fn new() -> (Self, Registry) {
        let mut registry = Registry::with_prefix("skytale_relay");
        let streams_open = Gauge::default();
        registry.register("streams_open", "Client streams open", streams_open.clone());
        let subscriptions_open = Gauge::default();
        registry.register("subscriptions_open", "Subscriptions the open streams hold", subscriptions_open.clone());
        let publishes_accepted = Counter::default();
        registry.register(
            "publishes_accepted",
            "Publishes acknowledged (stored, or a retry of a stored message)",
            publishes_accepted.clone(),
        );
        let refused = Family::<Labels, Counter>::default();
        registry.register(
            "publishes_refused",
            "Publishes answered with an error frame, by error code",
            refused.clone(),
        );
        let publishes_refused = REFUSAL_CODES.map(|code| refused.get_or_create(&[("code", code)]).clone());
        let append_latency = AtomicHistogram::new(APPEND_LATENCY_BOUNDS);
        registry.register(
            "append_latency_seconds",
            "From the log writer receiving an append to its batch committed",
            append_latency.clone(),
        );
        let deliveries = Counter::default();
        registry.register("deliveries", "Messages queued to subscribed streams", deliveries.clone());
        let delivered_bytes = Counter::default();
        registry.register(
            "delivered_bytes",
            "Bytes of the deliveries queued to subscribed streams",
            delivered_bytes.clone(),
        );
        let catch_up_reads = Counter::default();
        registry.register(
            "catch_up_reads",
            "Reads of the log from SQLite by cursors behind the recent cache",
            catch_up_reads.clone(),
        );
        let waits = Family::<Labels, Counter>::default();
        registry.register(
            "delivery_waits",
            "Deliveries that had to wait: for room in their stream's outbound queue (stream_queue) or in their \
             connection's or account's in-flight budget (in_flight_budget)",
            waits.clone(),
        );
        let waits_for_stream_queue = waits.get_or_create(&[("for", "stream_queue")]).clone();
        let waits_for_in_flight_budget = waits.get_or_create(&[("for", "in_flight_budget")]).clone();
        let retention_removed = Counter::default();
        registry.register("retention_removed_messages", "Messages removed by retention", retention_removed.clone());
        let failures = Family::<Labels, Counter>::default();
        registry.register("auth_failures", "Tokens and member proofs refused, by reason", failures.clone());
        let auth_failures =
            AuthFailure::ALL.map(|reason| failures.get_or_create(&[("reason", reason.label())]).clone());
        let streams_refused = Family::<Labels, Counter>::default();
        registry.register(
            "streams_refused",
            "Streams refused at open, by error code (quota_exceeded: the account's open streams; draining: the relay stops)",
            streams_refused.clone(),
        );
        let streams_refused = STREAM_REFUSAL_CODES.map(|code| streams_refused.get_or_create(&[("code", code)]).clone());
        let draining = Gauge::default();
        registry.register(
            "draining",
            "1 while the relay drains before stopping (it accepts no new connections or streams), else 0",
            draining.clone(),
        );
        let metrics = Self {
            streams_open,
            subscriptions_open,
            publishes_accepted,
            publishes_refused,
            append_latency,
            deliveries,
            delivered_bytes,
            catch_up_reads,
            waits_for_stream_queue,
            waits_for_in_flight_budget,
            retention_removed,
            auth_failures,
            streams_refused,
            draining,
        };
        (metrics, registry)
    }

    /// Counts a publish refused with `code`, one of the protocol's error codes (all of which [`REFUSAL_CODES`]
    /// lists).
    pub fn publish_refused(&self, code: &str) {
        if let Some(index) = REFUSAL_CODES.iter().position(|known| *known == code) {
            self.publishes_refused[index].inc();
        }
    }

    /// Counts a stream refused at open with `code`, one of [`STREAM_REFUSAL_CODES`].
    pub fn stream_refused(&self, code: &str) {
        if let Some(index) = STREAM_REFUSAL_CODES.iter().position(|known| *known == code) {
            self.streams_refused[index].inc();
        }
    }

    pub fn auth_failed(&self, reason: AuthFailure) {
        // `ALL` lists the reasons in declaration order, so a reason's discriminant is its index.
        self.auth_failures[reason as usize].inc();
    }

    /// Counts an open stream until the returned guard is dropped.
    pub fn stream_open(&self) -> GaugeGuard {
        GaugeGuard::new(&self.streams_open)
    }

    /// Counts a subscription until the returned guard is dropped.
    pub fn subscription_open(&self) -> GaugeGuard {
        GaugeGuard::new(&self.subscriptions_open)
    }
}
