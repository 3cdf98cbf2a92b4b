//! What the channel log stores and hands back, whichever log it is ([`crate::log`]): messages as stored, the
//! members' epochs, what retention removed, and why a store operation failed.

use std::ops::Range;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::frames;

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
