//! The channel log: the one interface through which the relay stores and reads every channel's messages, and
//! the vocabulary its implementations share.
//!
//! The Delivery-Service rules (`docs/protocol.md`) are decided where a message is made durable, so the interface
//! is cut at that level: [`ChannelLog::append`] hands a validated publish to the log, which numbers it, checks its
//! epoch and its channel's MLS group, stores it, and only then answers. The embedded implementation is
//! [`crate::sqlite_log`] (one SQLite file, one writer thread); every other part of the relay (sessions,
//! subscriptions, head queries, retention, readiness) sees only this trait.

use std::ops::Range;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::future::BoxFuture;
use skytale_proto::ChannelName;
use tokio::sync::oneshot;

use crate::append::AppendResult;
use crate::auth::Creator;
use crate::channel::ChannelFeed;
use crate::config::ChannelQuota;
use crate::error::RelayError;
use crate::frames;
use crate::membership::MemberKey;
use crate::mls_framing::MlsHeader;

/// Every channel's durable log, as the rest of the relay uses it.
pub trait ChannelLog: Send + Sync + 'static {
    /// Queues `request`; the returned receiver yields the outcome once the message is durable (or refused).
    /// Waits while the log's queue is full, which is how publishers are slowed down.
    fn append(&self, request: AppendRequest) -> BoxFuture<'_, Result<oneshot::Receiver<AppendResult>, RelayError>>;

    /// The feed of `channel`: its head, epoch, retention mark and recent messages, kept current as the log grows.
    fn feed(&self, channel: &ChannelName) -> BoxFuture<'_, Result<Arc<ChannelFeed>, StoreError>>;

    /// Messages of `channel` from `from_seq` on, in order, within `limit` (at least one if any exists).
    fn read_from(
        &self,
        channel: &ChannelName,
        from_seq: u64,
        limit: ReadLimit,
    ) -> BoxFuture<'_, Result<Vec<StoredMessage>, StoreError>>;

    /// Sequence number of the first stored message of `channel` whose epoch is at least `epoch`.
    fn first_seq_from_epoch(&self, channel: &ChannelName, epoch: u64)
        -> BoxFuture<'_, Result<Option<u64>, StoreError>>;

    /// What the log knows of `member`'s place in `channel` (see [`Membership`]).
    fn membership(&self, channel: &ChannelName, member: &[u8]) -> BoxFuture<'_, Result<Membership, StoreError>>;

    /// Removes messages stored before `cutoff_ms` (unix milliseconds) and beyond `max_bytes` per channel.
    fn expire(&self, cutoff_ms: i64, max_bytes: Option<u64>) -> BoxFuture<'_, Result<Vec<Expiry>, RelayError>>;

    /// Whether the log answers a new reader now (the relay's readiness).
    fn probe(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Channels held in memory (docs/relay.md, "Memory and backpressure"), for tests and diagnostics.
    fn channels_in_memory(&self) -> usize;

    /// Lets queued appends finish, then stops writing and releases the store.
    fn stop(&self) -> BoxFuture<'_, ()>;
}

/// A publish that passed validation, to be admitted to its channel's log.
#[derive(Debug)]
pub struct AppendRequest {
    pub channel: ChannelName,
    pub msg_id: String,
    pub header: MlsHeader,
    /// The `Publish` frame, encoded: what the log stores.
    pub frame: Bytes,
    /// The MLS message's size in bytes: what `max_payload` limits and the account's publish rate counts.
    pub size: usize,
    /// The MLS message itself when it is a handshake (commit, proposal, GroupInfo), which the relay validates.
    pub handshake: Option<Vec<u8>>,
    /// The MLS member key the publishing stream proved, if any.
    pub sender: Option<MemberKey>,
    /// For a channel's creation with auth on: whose quota it counts against.
    pub creator: Option<Creator>,
}

/// How the log writer admits writes beyond the framing rules.
#[derive(Clone, Copy, Debug)]
pub struct WriteRules {
    /// Channels are created by their first member's GroupInfo and every write is checked against the channel's
    /// MLS group (`membership`); without, any first message binds a channel and only the framing rules apply (a
    /// relay with auth off, for local development).
    pub follow_groups: bool,
    pub channel_quota: ChannelQuota,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored channel name {0:?} is invalid")]
    CorruptName(String),
    #[error("a message id conflicted with a stored one that cannot be found")]
    LostMessage,
    #[error("a channel's stored MLS group state cannot be used: {0}")]
    CorruptGroup(String),
    #[error("the read did not finish: {0}")]
    ReadAborted(String),
    #[error("{0}")]
    Nats(String),
    #[error("the log stream is not the relay's: {0}")]
    CorruptEntry(String),
    #[error(
        "this log does not follow channels' MLS groups: the JetStream log serves relays with --auth none only, for \
         now"
    )]
    GroupsNotFollowed,
}

/// One accepted message as the log keeps it: the original `Publish` frame plus what the relay assigned, held as
/// the delivery every subscriber gets (encoded once, shared).
#[derive(Clone, Debug)]
pub struct StoredMessage {
    pub seq: u64,
    pub epoch: u64,
    /// When the relay stored it, in milliseconds since the Unix epoch.
    pub stored_at_ms: i64,
    delivery: Bytes,
    /// Where the original `Publish` encoding lies in `delivery`.
    frame: Range<usize>,
}

impl StoredMessage {
    /// The message `frame` (an encoded `Publish`) stored at `seq` at `stored_at_ms`.
    pub fn new(seq: u64, epoch: u64, stored_at_ms: i64, msg_id: &str, frame: &[u8]) -> Self {
        let (delivery, frame) = frames::encode_delivery(frame, seq, epoch, stored_at_ms, msg_id);
        Self { seq, epoch, stored_at_ms, delivery, frame }
    }

    /// The original `Publish` frame, as stored.
    pub fn frame(&self) -> &[u8] {
        &self.delivery[self.frame.clone()]
    }

    /// The encoded delivery frame (a cheap reference-counted handle).
    pub fn delivery(&self) -> Bytes {
        self.delivery.clone()
    }

    /// Bytes this message occupies in the log (its encoded frame); used for cache and retention budgets.
    pub fn size(&self) -> usize {
        self.frame.len()
    }
}

/// Where a key stands in a channel, as the reader sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Membership {
    /// Nothing is stored under the name yet.
    NoChannel,
    /// The channel exists but the relay does not follow its group (it was created while auth was off).
    Untracked,
    /// The epochs during which the key was a member, oldest first (empty: never a member).
    Tracked(Vec<EpochSpan>),
}

/// Epochs `from..until` (`until` = `None`: still a member).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochSpan {
    pub from: u64,
    pub until: Option<u64>,
}

impl EpochSpan {
    pub fn contains(&self, epoch: u64) -> bool {
        self.from <= epoch && self.until.is_none_or(|until| epoch < until)
    }
}

/// Messages removed from one channel by a retention sweep: every seq up to `through_seq` is gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expiry {
    pub channel: String,
    pub through_seq: u64,
    pub through_epoch: u64,
    /// How many messages the sweep removed from the channel.
    pub removed: u64,
}

/// Limits on one catch-up read, so a cursor far behind holds only a bounded slice of the log in memory.
#[derive(Clone, Copy, Debug)]
pub struct ReadLimit {
    pub max_messages: usize,
    pub max_bytes: usize,
}

/// Wall-clock time in milliseconds since the Unix epoch, as stored in `messages.stored_at_ms`.
pub fn unix_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}
