//! The channel log: the one interface through which the relay stores and reads every channel's messages, and
//! the vocabulary its implementations share.
//!
//! The Delivery-Service rules (`docs/protocol.md`) are decided where a message is made durable, so the interface
//! is cut at that level: [`ChannelLog::append`] hands a validated publish to the log, which numbers it, checks its
//! epoch and its channel's MLS group, stores it, and only then answers. The embedded implementation is
//! [`crate::sqlite_log`] (one SQLite file, one writer thread); every other part of the relay (sessions,
//! subscriptions, head queries, retention, readiness) sees only this trait.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use skytale_proto::ChannelName;
use tokio::sync::oneshot;

use crate::append::AppendResult;
use crate::auth::Creator;
use crate::channel::ChannelFeed;
use crate::config::ChannelQuota;
use crate::error::RelayError;
use crate::membership::MemberKey;
use crate::mls_framing::MlsHeader;
use crate::stored::{Expiry, Membership, ReadLimit, StoreError, StoredMessage};

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
