//! A subscription is a cursor over one channel's log, delivering to one stream.
//!
//! The cursor remembers the next sequence number to deliver. While behind, it reads batches from the recent cache
//! or SQLite; once caught up it waits for the channel head to move. Catch-up and live delivery are the same loop
//! over the same numbers, so switching between them can neither skip nor repeat a message. Each delivery waits for
//! room in the stream's bounded outbound queue, so a slow client slows only its own cursors and nothing is dropped;
//! at most one batch per cursor is held in memory however long the backlog is. Before reading a batch the cursor
//! waits at the stream's [`DeliveryGate`]: for a valid token, and for room in the connection's and the account's
//! in-flight budgets, which the batch's deliveries then hold until they are written to the socket.

use std::sync::Arc;

use bytes::Bytes;
use skytale_proto::meta::error_code;
use skytale_proto::ChannelName;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;
use tonic::Status;
use tracing::Instrument;

use crate::access::{MemberGate, Verdict};
use crate::channel::{ChannelFeed, RetentionExpired};
use crate::codec::OutFrame;
use crate::frames::{self, Refusal};
use crate::log::ChannelLog;
use crate::metrics::RelayMetrics;
use crate::stored::{ReadLimit, StoredMessage};
use crate::stream_guard::DeliveryGate;

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

/// How a batch went.
enum Batch {
    /// Every message of it was queued.
    Delivered,
    /// The reservation ran out (or the token expired) before a delivery of this many bytes.
    TooLarge(usize),
    Failed(Refusal),
    StreamGone,
}

/// Where a cursor delivers, and what it must wait for or leave out on the way.
pub struct Recipient {
    /// The stream's queue.
    pub outbound: Outbound,
    /// With auth on, the epochs the stream's member key may read (`access`).
    pub members: Option<MemberGate>,
    /// The stream's token and in-flight budgets (`stream_guard`).
    pub gate: DeliveryGate,
    /// Where the cursor counts its deliveries, catch-up reads and waits.
    pub metrics: Arc<RelayMetrics>,
}

/// A running subscription, counted as open while it lives; dropping it stops the cursor.
pub struct SubscriptionTask {
    task: JoinHandle<()>,
    _open: skytale_admin::GaugeGuard,
}

impl Drop for SubscriptionTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A positioned cursor, ready to run.
pub struct Cursor {
    channel: ChannelName,
    subscription_id: u64,
    feed: Arc<ChannelFeed>,
    log: Arc<dyn ChannelLog>,
    next_seq: u64,
    /// Messages below this epoch are skipped (subscriptions from an epoch not yet reached by the log).
    min_epoch: Option<u64>,
    /// With auth on, the epochs this stream's member key may read (`access`).
    members: Option<MemberGate>,
    outbound: Outbound,
    gate: DeliveryGate,
    metrics: Arc<RelayMetrics>,
}

fn expired(error: RetentionExpired) -> Refusal {
    Refusal::new(error_code::RETENTION_EXPIRED, error.to_string())
}

/// The refusal for a read of the log that failed.
pub fn unreadable_log(error: impl std::fmt::Display) -> Refusal {
    Refusal::new(error_code::STORAGE, format!("cannot read the channel log: {error}"))
}

impl Cursor {
    /// Positions a cursor at `start`, or refuses when the log no longer holds what `start` asks for.
    pub async fn open(
        channel: ChannelName,
        subscription_id: u64,
        feed: Arc<ChannelFeed>,
        log: Arc<dyn ChannelLog>,
        start: StartPoint,
        recipient: Recipient,
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
                let first = log.first_seq_from_epoch(&channel, epoch).await.map_err(unreadable_log)?;
                (first.unwrap_or(head + 1), Some(epoch))
            }
        };
        let Recipient { outbound, members, gate, metrics } = recipient;
        Ok(Self { channel, subscription_id, feed, log, next_seq, min_epoch, members, outbound, gate, metrics })
    }

    /// Starts delivering in the background.
    pub fn spawn(self) -> SubscriptionTask {
        let open = self.metrics.subscription_open();
        // In the stream's span, so its lines name the stream and the account.
        SubscriptionTask { _open: open, task: tokio::spawn(self.run().in_current_span()) }
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
        // A batch asks for at most a quarter of the stream's budget, so that its cursors share the budget rather
        // than wait for all of it.
        let batch_bytes = READ_LIMIT.max_bytes.min(self.gate.capacity() / 4).max(1);
        let mut wanted = batch_bytes;
        loop {
            let current = *head.borrow_and_update();
            if self.next_seq > current {
                // The feed (and so the sender) lives as long as this cursor holds it: this never fails.
                head.changed().await.ok()?;
                continue;
            }
            // Boxed: delivering a batch needs far more state than waiting for the next one, and an idle cursor
            // should only hold the latter.
            wanted = match Box::pin(self.deliver_batch(wanted)).await {
                Batch::Delivered => batch_bytes,
                Batch::TooLarge(delivery_len) => delivery_len,
                Batch::Failed(refusal) => return Some(refusal),
                Batch::StreamGone => return None,
            };
        }
    }

    /// Reserves `wanted` bytes of the stream's budget, reads the next batch within them and queues its deliveries.
    async fn deliver_batch(&mut self, wanted: usize) -> Batch {
        if !self.gate.has_room(wanted) {
            self.metrics.waits_for_in_flight_budget.inc();
        }
        let Some(reserved) = self.gate.admit(wanted).await else {
            return Batch::StreamGone;
        };
        let limit = ReadLimit { max_bytes: reserved.bytes(), ..READ_LIMIT };
        let batch = match self.next_batch(limit).await {
            Ok(batch) => batch,
            Err(refusal) => return Batch::Failed(refusal),
        };
        // What the cursor does with each message, up to the first one its member key may no longer read.
        let mut steps = Vec::with_capacity(batch.len());
        let mut ended = None;
        for message in &batch {
            match self.verdict(message).await {
                Verdict::Deliver => steps.push((message.seq, Some(message.delivery()))),
                Verdict::Skip => steps.push((message.seq, None)),
                Verdict::End(refusal) => {
                    ended = Some(refusal);
                    break;
                }
            }
        }
        // Keep what the batch needs and give the rest back at once: the stream's other cursors may wait for it.
        let needed = steps.iter().filter_map(|(_, delivery)| delivery.as_ref()).map(Bytes::len).sum::<usize>();
        let mut grant = reserved.shrink(needed);
        for (seq, delivery) in steps {
            if let Some(delivery) = delivery {
                // Out of room, or the token expired meanwhile: the rest is read again at the next turn, the
                // message that did not fit asking for its own size (up to the whole budget).
                let Some(share) = grant.take(delivery.len()).filter(|_| self.gate.open()) else {
                    return Batch::TooLarge(delivery.len());
                };
                let bytes = delivery.len() as u64;
                if self.queue(OutFrame::Delivery(delivery, Box::new(share))).await.is_err() {
                    return Batch::StreamGone;
                }
                self.metrics.deliveries.inc();
                self.metrics.delivered_bytes.inc_by(bytes);
            }
            self.next_seq = seq + 1;
        }
        match ended {
            Some(refusal) => Batch::Failed(refusal),
            None => Batch::Delivered,
        }
    }

    /// Queues a delivery on the stream, counting it when it has to wait for room; `Err` once the stream is gone.
    async fn queue(&self, delivery: OutFrame) -> Result<(), ()> {
        match self.outbound.try_send(Ok(delivery)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(delivery)) => {
                self.metrics.waits_for_stream_queue.inc();
                self.outbound.send(delivery).await.map_err(drop)
            }
            Err(TrySendError::Closed(_)) => Err(()),
        }
    }

    /// Whether the message is below the subscription's start epoch, or outside its member key's epochs.
    async fn verdict(&mut self, message: &StoredMessage) -> Verdict {
        if self.min_epoch.is_some_and(|epoch| message.epoch < epoch) {
            return Verdict::Skip;
        }
        match &mut self.members {
            None => Verdict::Deliver,
            Some(members) => members.check(message.epoch).await,
        }
    }

    /// The next messages from `next_seq` on, which must start exactly at `next_seq`: if retention removed it
    /// meanwhile, the subscription fails rather than skip ahead.
    async fn next_batch(&self, limit: ReadLimit) -> Result<Vec<Arc<StoredMessage>>, Refusal> {
        let low_seq = self.feed.low_seq();
        if self.next_seq < low_seq {
            return Err(expired(RetentionExpired { channel: self.channel.to_string(), low_seq }));
        }
        if let Some(recent) = self.feed.recent_from(self.next_seq, limit) {
            if !recent.is_empty() {
                return Ok(recent);
            }
        }
        self.metrics.catch_up_reads.inc();
        let stored = self.log.read_from(&self.channel, self.next_seq, limit).await.map_err(unreadable_log)?;
        if stored.first().map(|m| m.seq) != Some(self.next_seq) {
            let low_seq = self.feed.low_seq();
            return Err(expired(RetentionExpired { channel: self.channel.to_string(), low_seq }));
        }
        Ok(stored.into_iter().map(Arc::new).collect())
    }
}
