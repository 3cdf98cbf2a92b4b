//! What one stream may hold and for how long (docs/protocol.md, "Stream limits"): its subscriptions and the
//! distinct channel names it uses are capped, a stream that does nothing useful is ended after a while, and so is
//! a stream whose token stays expired; until then, an expired token pauses the stream's deliveries. The session
//! asks its [`StreamGuard`] at each of these points; the cursors ask the stream's [`DeliveryGate`] before each
//! delivery.
//!
//! The caps are per stream and generous on purpose: a client carries all its channels on one stream (the Python
//! SDK's manager may follow thousands), and a stream that only publishes or only queries heads is as legitimate as
//! one that subscribes.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::BuildHasher;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use skytale_proto::meta::error_code;
use skytale_proto::ChannelName;
use tokio::sync::watch;
use tonic::Status;

use crate::frames::Refusal;
use crate::inflight::{DeliveryBudget, Grant};

/// Refused frames logged at warn per stream and [`REFUSAL_LOG_INTERVAL`]; beyond that they are counted, and the
/// count is logged once the interval is over (or the stream ends), so a hostile client cannot flood the log.
const REFUSALS_LOGGED_PER_INTERVAL: u32 = 10;
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The per-stream limits, from [`RelayConfig`](crate::RelayConfig).
#[derive(Clone, Copy, Debug)]
pub struct StreamLimits {
    pub max_subscriptions: usize,
    pub max_names: usize,
    pub idle_timeout: Duration,
    pub token_grace: Duration,
}

/// Why the relay ends a stream on its own: the error frame the client gets, then the stream's status.
pub struct StreamEnd {
    pub refusal: Refusal,
    pub status: Status,
}

/// `duration` after `instant`, or a century after it for a duration too long to add.
fn after(instant: Instant, duration: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    instant.checked_add(duration).unwrap_or(instant + CENTURY)
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Whether a stream whose token is valid through `through` (unix seconds; `None`: no token to expire) may get
/// deliveries now.
fn token_valid(through: Option<u64>) -> bool {
    through.is_none_or(|through| now_secs() <= through)
}

/// One stream's limits and the state they are checked against.
pub struct StreamGuard {
    limits: StreamLimits,
    /// Every channel name the stream has used, hashed: 8 bytes a name is what the cap lets a stream hold.
    names: HashSet<u64>,
    hasher: RandomState,
    /// When the stream last did something useful (see [`StreamGuard::used`]); it opened then at the latest.
    idle_since: Instant,
    /// Through when (unix seconds) the stream's token is valid, clock leeway included; read by its cursors.
    valid_through: watch::Sender<Option<u64>>,
    budget: DeliveryBudget,
    refusals: RefusalLog,
}

impl StreamGuard {
    /// The guard of a stream opened now, whose token is valid through `valid_through`, delivering within
    /// `budget`; `who` names it in logs.
    pub fn new(limits: StreamLimits, budget: DeliveryBudget, valid_through: Option<u64>, who: String) -> Self {
        Self {
            limits,
            names: HashSet::new(),
            hasher: RandomState::new(),
            idle_since: Instant::now(),
            valid_through: watch::Sender::new(valid_through),
            budget,
            refusals: RefusalLog::new(who),
        }
    }

    /// What the stream's cursors check before each delivery.
    pub fn gate(&self) -> DeliveryGate {
        DeliveryGate { budget: self.budget.clone(), valid_through: self.valid_through.subscribe() }
    }

    /// A subscribe, publish or head query names `channel`: refused with `quota_names` if it is a name this stream
    /// has not used before and it already used as many as it may.
    pub fn admit_name(&mut self, channel: &ChannelName) -> Result<(), Refusal> {
        let hash = self.hasher.hash_one(channel);
        if self.names.contains(&hash) {
            return Ok(());
        }
        if self.names.len() >= self.limits.max_names {
            let max = self.limits.max_names;
            return Err(Refusal::new(
                error_code::QUOTA_NAMES,
                format!(
                    "this stream already used {max} distinct channel names, the relay's limit per stream: \
                     open another stream to use {channel}"
                ),
            ));
        }
        self.names.insert(hash);
        Ok(())
    }

    /// A new subscription on a stream that has `current` of them: refused with `quota_subscriptions` at the cap.
    /// Replacing a subscription to the same channel does not add one.
    pub fn admit_subscription(&self, current: usize, replacing: bool) -> Result<(), Refusal> {
        let max = self.limits.max_subscriptions;
        if replacing || current < max {
            return Ok(());
        }
        Err(Refusal::new(
            error_code::QUOTA_SUBSCRIPTIONS,
            format!(
                "this stream already has {max} subscriptions, the relay's limit per stream: unsubscribe from one first"
            ),
        ))
    }

    /// The stream did something useful: started a subscription, gave up its last one, or had a publish or head
    /// query acted on. A stream without subscriptions is ended once this is [`StreamLimits::idle_timeout`] ago.
    pub fn used(&mut self) {
        self.idle_since = Instant::now();
    }

    /// The stream's token was replaced: deliveries paused by the old one's expiry resume.
    pub fn token_refreshed(&mut self, valid_through: Option<u64>) {
        self.valid_through.send_replace(valid_through);
    }

    /// Whether the stream may go on (`subscribed`: it has a subscription); if so, when to ask again.
    pub fn check(&self, subscribed: bool) -> Result<Instant, StreamEnd> {
        let now = Instant::now();
        // Nothing may be due for a while, but subscriptions and tokens change: look again after a timeout.
        let mut next = after(now, self.limits.idle_timeout);
        if !subscribed {
            let idle_end = after(self.idle_since, self.limits.idle_timeout);
            if idle_end <= now {
                let timeout = self.limits.idle_timeout;
                let message = format!(
                    "stream closed: no subscription, publish or head query for {timeout:?}; open a new one when needed"
                );
                return Err(StreamEnd {
                    refusal: Refusal::new(error_code::IDLE_TIMEOUT, message.clone()),
                    status: Status::deadline_exceeded(message),
                });
            }
            next = next.min(idle_end);
        }
        if let Some(through) = *self.valid_through.borrow() {
            let grace = self.limits.token_grace;
            let end = through.saturating_add(grace.as_secs());
            let now_secs = now_secs();
            if now_secs > end {
                let message = format!(
                    "stream closed: its token expired and was not refreshed within {grace:?}; open a new stream \
                     with a fresh token"
                );
                return Err(StreamEnd {
                    refusal: Refusal::new(error_code::UNAUTHORIZED, message.clone()),
                    status: Status::unauthenticated(message),
                });
            }
            next = next.min(after(now, Duration::from_secs(end - now_secs + 1)));
        }
        Ok(next)
    }

    /// Whether to log a refused frame at warn now (see [`REFUSALS_LOGGED_PER_INTERVAL`]).
    pub fn log_refusal(&mut self) -> bool {
        self.refusals.admit()
    }
}

/// Counts a stream's refused frames so that only the first few of each interval are logged.
struct RefusalLog {
    who: String,
    interval_start: Instant,
    logged: u32,
    suppressed: u64,
}

impl RefusalLog {
    fn new(who: String) -> Self {
        Self { who, interval_start: Instant::now(), logged: 0, suppressed: 0 }
    }

    fn admit(&mut self) -> bool {
        if self.interval_start.elapsed() >= REFUSAL_LOG_INTERVAL {
            self.summarize();
            self.interval_start = Instant::now();
            self.logged = 0;
        }
        if self.logged < REFUSALS_LOGGED_PER_INTERVAL {
            self.logged += 1;
            return true;
        }
        self.suppressed += 1;
        false
    }

    /// Logs how many refusals were not, if any.
    fn summarize(&mut self) {
        if self.suppressed > 0 {
            tracing::warn!(
                identity = self.who,
                "{} more frames refused and not logged (at most {REFUSALS_LOGGED_PER_INTERVAL} a stream every \
                 {REFUSAL_LOG_INTERVAL:?})",
                self.suppressed
            );
            self.suppressed = 0;
        }
    }
}

impl Drop for RefusalLog {
    /// The stream ended: what it had refused and not logged is counted once more.
    fn drop(&mut self) {
        self.summarize();
    }
}

/// What a stream's cursors wait for before reading and delivering: a valid token and room in the stream's
/// in-flight budget.
#[derive(Clone)]
pub struct DeliveryGate {
    budget: DeliveryBudget,
    valid_through: watch::Receiver<Option<u64>>,
}

impl DeliveryGate {
    /// Waits until the stream's token is valid (a refresh after it expired) and then until `bytes` of its budget
    /// are free, and takes them. `None` once the stream is gone.
    pub async fn admit(&mut self, bytes: usize) -> Option<Grant> {
        while !token_valid(*self.valid_through.borrow_and_update()) {
            self.valid_through.changed().await.ok()?;
        }
        Some(self.budget.reserve(bytes).await)
    }

    /// Whether `bytes` of the stream's budget are free now, so that [`admit`](Self::admit) would not wait for room
    /// (it may still wait for a token refresh).
    pub fn has_room(&self, bytes: usize) -> bool {
        self.budget.has_room(bytes)
    }

    /// The most the stream's deliveries may have in flight (the smaller of its connection's and account's budget).
    pub fn capacity(&self) -> usize {
        self.budget.capacity() as usize
    }

    /// Whether deliveries may still be queued: false once the stream's token expired.
    pub fn open(&self) -> bool {
        token_valid(*self.valid_through.borrow())
    }
}
