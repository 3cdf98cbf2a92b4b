//! A subscription is a cursor over one channel's log, delivering to one stream.
//!
//! The cursor remembers the next sequence number to deliver. While behind, it reads batches from the recent cache
//! or SQLite; once caught up it waits for the channel head to move. Catch-up and live delivery are the same loop
//! over the same numbers, so switching between them can neither skip nor repeat a message. Each delivery waits for
//! room in the stream's bounded outbound queue, so a slow client slows only its own cursors and nothing is dropped;
//! at most one batch per cursor is held in memory however long the backlog is.

use std::sync::Arc;

use skytale_proto::meta::error_code;
use skytale_proto::ChannelName;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::Status;

use crate::channel::{ChannelFeed, RetentionExpired};
use crate::codec::OutFrame;
use crate::frames::{self, Refusal};
use crate::store::{ReadLimit, ReadPool, StoredMessage};

/// The stream's outbound queue, shared by its cursors and its reply pipeline.
pub type Outbound = mpsc::Sender<Result<OutFrame, Status>>;

/// One catch-up read: enough to keep the stream busy, small enough to bound memory per cursor.
const READ_LIMIT: ReadLimit = ReadLimit { max_messages: 256, max_bytes: 4 << 20 };

/// Where a subscription starts (`docs/protocol.md`, Subscribe).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartPoint {
    /// Only messages appended after the subscription.
    Live,
    /// Every message with seq >= this.
    Seq(u64),
    /// From the first stored message whose epoch is >= this.
    Epoch(u64),
}

/// A running subscription; dropping it stops the cursor.
pub struct SubscriptionTask(JoinHandle<()>);

impl Drop for SubscriptionTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A positioned cursor, ready to run.
pub struct Cursor {
    channel: ChannelName,
    subscription_id: u64,
    feed: Arc<ChannelFeed>,
    reader: Arc<ReadPool>,
    next_seq: u64,
    /// Messages below this epoch are skipped (subscriptions from an epoch not yet reached by the log).
    min_epoch: Option<u64>,
    outbound: Outbound,
}

fn expired(error: RetentionExpired) -> Refusal {
    Refusal::new(error_code::RETENTION_EXPIRED, error.to_string())
}

fn storage(error: impl std::fmt::Display) -> Refusal {
    Refusal::new(error_code::STORAGE, format!("cannot read the channel log: {error}"))
}

impl Cursor {
    /// Positions a cursor at `start`, or refuses when the log no longer holds what `start` asks for.
    pub async fn open(
        channel: ChannelName,
        subscription_id: u64,
        feed: Arc<ChannelFeed>,
        reader: Arc<ReadPool>,
        start: StartPoint,
        outbound: Outbound,
    ) -> Result<Self, Refusal> {
        let (next_seq, min_epoch) = match start {
            StartPoint::Live => (feed.head() + 1, None),
            StartPoint::Seq(seq) => {
                feed.check_retained_from_seq(&channel, seq).map_err(expired)?;
                (seq.max(1), None)
            }
            StartPoint::Epoch(epoch) => {
                feed.check_retained_from_epoch(&channel, epoch).map_err(expired)?;
                // Anything appended after this head and below `epoch` is skipped by the epoch filter.
                let head = feed.head();
                let (pool, name) = (Arc::clone(&reader), channel.to_string());
                let first = tokio::task::spawn_blocking(move || pool.first_seq_from_epoch(&name, epoch))
                    .await
                    .map_err(storage)?
                    .map_err(storage)?;
                (first.unwrap_or(head + 1), Some(epoch))
            }
        };
        Ok(Self { channel, subscription_id, feed, reader, next_seq, min_epoch, outbound })
    }

    /// Starts delivering in the background.
    pub fn spawn(self) -> SubscriptionTask {
        SubscriptionTask(tokio::spawn(self.run()))
    }

    async fn run(mut self) {
        if let Some(refusal) = self.follow().await {
            tracing::warn!(channel = %self.channel, code = refusal.code, "subscription ended: {}", refusal.message);
            // If the stream is gone there is no one left to tell.
            let _ = self.outbound.send(Ok(frames::subscription_refused(self.subscription_id, &refusal).into())).await;
        }
    }

    /// Delivers forever; returns `None` when the stream went away, or why the subscription cannot go on.
    async fn follow(&mut self) -> Option<Refusal> {
        let mut head = self.feed.watch_head();
        loop {
            let current = *head.borrow_and_update();
            if self.next_seq > current {
                // The feed (and so the sender) lives as long as this cursor holds it: this never fails.
                head.changed().await.ok()?;
                continue;
            }
            let batch = match self.next_batch().await {
                Ok(batch) => batch,
                Err(refusal) => return Some(refusal),
            };
            for message in batch {
                let below_start = self.min_epoch.is_some_and(|epoch| message.epoch < epoch);
                if !below_start {
                    self.outbound.send(Ok(OutFrame::Encoded(message.delivery()))).await.ok()?;
                }
                self.next_seq = message.seq + 1;
            }
        }
    }

    /// The next messages from `next_seq` on, which must start exactly at `next_seq`: if retention removed it
    /// meanwhile, the subscription fails rather than skip ahead.
    async fn next_batch(&self) -> Result<Vec<Arc<StoredMessage>>, Refusal> {
        let low_seq = self.feed.low_seq();
        if self.next_seq < low_seq {
            return Err(expired(RetentionExpired { channel: self.channel.to_string(), low_seq }));
        }
        if let Some(recent) = self.feed.recent_from(self.next_seq, READ_LIMIT) {
            if !recent.is_empty() {
                return Ok(recent);
            }
        }
        let (pool, name, from) = (Arc::clone(&self.reader), self.channel.to_string(), self.next_seq);
        let stored = tokio::task::spawn_blocking(move || pool.read_from(&name, from, READ_LIMIT))
            .await
            .map_err(storage)?
            .map_err(storage)?;
        if stored.first().map(|m| m.seq) != Some(self.next_seq) {
            let low_seq = self.feed.low_seq();
            return Err(expired(RetentionExpired { channel: self.channel.to_string(), low_seq }));
        }
        Ok(stored.into_iter().map(Arc::new).collect())
    }
}
