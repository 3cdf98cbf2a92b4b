//! The log writer: the single place where messages are admitted, numbered and made durable.
//!
//! One OS thread owns the SQLite write connection and the per-channel sequencer state (group id, current epoch,
//! next sequence number). Appends from all streams queue up on a bounded channel; the thread takes whatever is
//! waiting (up to [`MAX_BATCH`]), applies the Delivery-Service rules to each in order, writes the accepted ones in
//! one transaction and only after the commit answers each request and wakes the channels' subscribers. Batching
//! turns many concurrent publishes into one fsync; the single thread makes sequence and epoch decisions race-free.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rusqlite::Connection;
use skytale_admin::AtomicHistogram;
use skytale_proto::ChannelName;
use skytale_sqlite_wal::{Checkpointer, StartError};
use tokio::sync::{mpsc, oneshot};

use super::groups::{self, StagedGroups, TrackedGroups};
use super::store;
use crate::admission::{self, Submission};
use crate::append::{AppendError, AppendResult};
use crate::auth::Creator;
use crate::channel::{ChannelFeed, ChannelHub, FeedStart};
use crate::config::{ChannelQuota, SyncMode};
use crate::error::RelayError;
use crate::log::{AppendRequest, WriteRules};
use crate::membership::RosterChange;
use crate::mls_framing::ContentType;
use crate::stored::{unix_millis, Expiry, StoreError, StoredMessage};

/// Most appends committed in one transaction.
const MAX_BATCH: usize = 512;
/// Appends waiting for the writer; publishers beyond this wait (backpressure instead of unbounded memory).
const QUEUE_CAPACITY: usize = 4096;
/// Commits between two WAL checkpoints (run on their own thread, see `skytale_sqlite_wal`): a batch writes a
/// handful of pages, so the WAL stays in the low MB.
const COMMITS_PER_CHECKPOINT: NonZeroU64 = NonZeroU64::new(128).unwrap();

enum Command {
    // Boxed: a request is much larger than the other commands.
    Append(Box<AppendRequest>, Pending),
    Expire { cutoff_ms: i64, max_bytes: Option<u64>, reply: oneshot::Sender<Result<Vec<Expiry>, StoreError>> },
    Stop,
}

/// An append's way back to its publisher, and when the writer received it (its latency runs from there).
struct Pending {
    reply: oneshot::Sender<AppendResult>,
    received: Instant,
}

/// Handle to the writer thread; cheap to share behind an `Arc`.
pub struct LogWriter {
    commands: mpsc::Sender<Command>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl LogWriter {
    /// Opens the log at `path`, restores every channel's feed into `hub`, and starts the writer thread, which
    /// records each append's latency in `append_latency`.
    pub fn start(
        path: &Path,
        sync: SyncMode,
        hub: Arc<ChannelHub>,
        rules: WriteRules,
        append_latency: AtomicHistogram,
    ) -> Result<Self, RelayError> {
        let conn = store::open_writer(path, sync)?;
        let mut heads = HashMap::new();
        for row in store::load_channels(&conn)? {
            let name = ChannelName::parse(&row.name).map_err(|_| StoreError::CorruptName(row.name.clone()))?;
            hub.restore(
                name.clone(),
                FeedStart {
                    head: row.next_seq - 1,
                    epoch: Some(row.epoch),
                    low_seq: row.low_seq,
                    expired_epoch: row.expired_epoch,
                },
            );
            heads.insert(
                name,
                ChannelHead { id: row.id, group_id: row.group_id, epoch: row.epoch, next_seq: row.next_seq },
            );
        }
        let (commands, queue) = mpsc::channel(QUEUE_CAPACITY);
        let checkpointer =
            Checkpointer::start(path, COMMITS_PER_CHECKPOINT, "skytale-log-checkpoint").map_err(|e| match e {
                StartError::Open(e) => RelayError::from(StoreError::from(e)),
                StartError::Thread(e) => RelayError::WriterThread(e),
            })?;
        let groups = rules.follow_groups.then(TrackedGroups::new);
        let quota = rules.channel_quota;
        let sequencer = Sequencer { conn, checkpointer, heads, hub, groups, quota, append_latency };
        let thread = std::thread::Builder::new()
            .name("skytale-log-writer".into())
            .spawn(move || sequencer.run(queue))
            .map_err(RelayError::WriterThread)?;
        Ok(Self { commands, thread: Mutex::new(Some(thread)) })
    }

    /// Queues `request`; the returned receiver yields the outcome once it is durable (or refused).
    /// Waits while the writer's queue is full.
    pub async fn submit(&self, request: AppendRequest) -> Result<oneshot::Receiver<AppendResult>, RelayError> {
        let (reply, outcome) = oneshot::channel();
        let pending = Pending { reply, received: Instant::now() };
        self.commands.send(Command::Append(Box::new(request), pending)).await.map_err(|_| RelayError::WriterStopped)?;
        Ok(outcome)
    }

    /// Removes messages stored before `cutoff` (unix milliseconds) and beyond `max_bytes` per channel.
    pub async fn expire(&self, cutoff_ms: i64, max_bytes: Option<u64>) -> Result<Vec<Expiry>, RelayError> {
        let (reply, outcome) = oneshot::channel();
        self.commands
            .send(Command::Expire { cutoff_ms, max_bytes, reply })
            .await
            .map_err(|_| RelayError::WriterStopped)?;
        Ok(outcome.await.map_err(|_| RelayError::WriterStopped)??)
    }

    /// Lets queued work finish, then stops the thread and closes the database.
    pub async fn stop(&self) {
        // A send error means the thread is already gone.
        let _ = self.commands.send(Command::Stop).await;
        let thread = self.thread.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some(thread) = thread {
            if tokio::task::spawn_blocking(move || thread.join()).await.is_err() {
                tracing::error!("log writer thread panicked");
            }
        }
    }
}

/// What the sequencer knows about a channel.
#[derive(Clone)]
struct ChannelHead {
    id: i64,
    group_id: Vec<u8>,
    epoch: u64,
    next_seq: u64,
}

struct Sequencer {
    conn: Connection,
    checkpointer: Checkpointer,
    heads: HashMap<ChannelName, ChannelHead>,
    hub: Arc<ChannelHub>,
    /// `None`: channel groups are not followed.
    groups: Option<TrackedGroups>,
    quota: ChannelQuota,
    append_latency: AtomicHistogram,
}

/// A committed batch's new messages for one channel whose feed is in use.
struct Published {
    channel_id: i64,
    feed: Arc<ChannelFeed>,
    messages: Vec<Arc<StoredMessage>>,
    epoch_after: u64,
}

/// The outcome of admitting one request inside a batch, before the commit.
enum Admission {
    Stored { channel_id: i64, message: Arc<StoredMessage>, epoch_after: u64 },
    Duplicate(u64),
    Refused(AppendError),
}

impl Sequencer {
    fn run(mut self, mut queue: mpsc::Receiver<Command>) {
        let mut next = queue.blocking_recv();
        while let Some(command) = next.take() {
            match command {
                Command::Stop => break,
                Command::Expire { cutoff_ms, max_bytes, reply } => {
                    // The requester may have given up; nothing to do then.
                    let _ = reply.send(self.expire(cutoff_ms, max_bytes));
                }
                Command::Append(request, pending) => {
                    let mut batch = vec![(*request, pending)];
                    while batch.len() < MAX_BATCH {
                        match queue.try_recv() {
                            Ok(Command::Append(request, pending)) => batch.push((*request, pending)),
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.append_batch(batch);
                }
            }
            if next.is_none() {
                next = queue.blocking_recv();
            }
        }
        tracing::debug!("log writer stopped");
    }

    fn append_batch(&mut self, batch: Vec<(AppendRequest, Pending)>) {
        let mut staged: HashMap<ChannelName, ChannelHead> = HashMap::new();
        let mut staged_groups = StagedGroups::new();
        let (requests, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let admissions = self.admit_all(requests, &mut staged, &mut staged_groups);
        let admissions = match admissions {
            Ok(admissions) => admissions,
            Err(error) => {
                tracing::error!(%error, "append batch failed, nothing stored");
                let refusal = AppendError::Storage(error.to_string());
                for Pending { reply, .. } in replies {
                    let _ = reply.send(Err(refusal.clone()));
                }
                return;
            }
        };
        let committed = Instant::now();
        for pending in &replies {
            self.append_latency.observe(committed.saturating_duration_since(pending.received));
        }
        // Subscribers learn of the batch first (once per channel, not per message), so that by the time a
        // publisher sees its ack every head query and subscription already sees the message. Channels nobody
        // follows right now have no feed: the hub records where their next feed starts.
        let mut published = Vec::new();
        for (channel, head) in &staged {
            if let Some(feed) = self.hub.committed(channel, head.next_seq.saturating_sub(1), head.epoch) {
                published.push(Published { channel_id: head.id, feed, messages: Vec::new(), epoch_after: head.epoch });
            }
        }
        self.heads.extend(staged);
        if let Some(groups) = &mut self.groups {
            groups.install(staged_groups);
        }
        let mut results = Vec::with_capacity(admissions.len());
        for admission in admissions {
            results.push(match admission {
                Admission::Stored { channel_id, message, epoch_after } => {
                    let seq = message.seq;
                    if let Some(to) = published.iter_mut().find(|to| to.channel_id == channel_id) {
                        to.messages.push(message);
                        to.epoch_after = epoch_after;
                    }
                    Ok(seq)
                }
                Admission::Duplicate(seq) => Ok(seq),
                Admission::Refused(error) => Err(error),
            });
        }
        for Published { feed, messages, epoch_after, .. } in published {
            feed.append(messages, epoch_after);
        }
        for (result, Pending { reply, .. }) in results.into_iter().zip(replies) {
            // The publisher may have disconnected meanwhile; the message is stored either way.
            let _ = reply.send(result);
        }
    }

    /// Admits every request in one transaction; on any storage error nothing of the batch is kept and the
    /// staged channel heads are discarded with it.
    fn admit_all(
        &mut self,
        requests: Vec<AppendRequest>,
        staged: &mut HashMap<ChannelName, ChannelHead>,
        staged_groups: &mut StagedGroups,
    ) -> Result<Vec<Admission>, StoreError> {
        let tx = self.conn.transaction()?;
        let now_ms = unix_millis();
        let mut admissions = Vec::with_capacity(requests.len());
        let mut batch = Batch {
            conn: &tx,
            committed: &self.heads,
            staged,
            groups: self.groups.as_mut(),
            staged_groups,
            quota: self.quota,
        };
        for request in requests {
            admissions.push(batch.admit(request, now_ms)?);
        }
        for head in staged.values() {
            store::update_channel_head(&tx, head.id, head.epoch, head.next_seq)?;
        }
        tx.commit()?;
        self.checkpointer.committed();
        Ok(admissions)
    }

    fn expire(&mut self, cutoff_ms: i64, max_bytes: Option<u64>) -> Result<Vec<Expiry>, StoreError> {
        let tx = self.conn.transaction()?;
        let expiries = store::expire(&tx, cutoff_ms, max_bytes)?;
        tx.commit()?;
        self.checkpointer.committed();
        for expiry in &expiries {
            match ChannelName::parse(&expiry.channel) {
                Ok(name) => {
                    if let Some(feed) = self.hub.expired(&name, expiry.through_seq, expiry.through_epoch) {
                        feed.expire_through(expiry.through_seq, expiry.through_epoch);
                    }
                }
                Err(_) => return Err(StoreError::CorruptName(expiry.channel.clone())),
            }
        }
        Ok(expiries)
    }
}

/// One batch's view while it is admitted: the log as committed plus what the batch staged so far.
struct Batch<'b> {
    conn: &'b Connection,
    committed: &'b HashMap<ChannelName, ChannelHead>,
    staged: &'b mut HashMap<ChannelName, ChannelHead>,
    groups: Option<&'b mut TrackedGroups>,
    staged_groups: &'b mut StagedGroups,
    quota: ChannelQuota,
}

impl Batch<'_> {
    /// Applies the Delivery-Service rules (`docs/protocol.md`) to one request, in log order: an already stored
    /// msg id is answered with its original seq; a channel is created by its first message (with followed
    /// groups, only by a GroupInfo of the publishing member) and bound to that group; every message must carry
    /// the channel's current epoch; with followed groups, handshakes must be valid for the group and come from
    /// the member that signed them, and application messages from a member's stream; an accepted commit opens
    /// the next epoch.
    fn admit(&mut self, request: AppendRequest, now_ms: i64) -> Result<Admission, StoreError> {
        let AppendRequest { channel, msg_id, header, frame, handshake, sender, creator, size: _ } = request;
        let submission =
            Submission { channel: &channel, header: &header, blob: handshake.as_deref(), sender: sender.as_ref() };
        // Checked before inserting, so the name is cloned once per channel and batch, not once per message.
        if !self.staged.contains_key(&channel) {
            let head = match self.committed.get(&channel) {
                Some(head) => head.clone(),
                None => match self.create(&submission, creator.as_ref())? {
                    Ok(head) => head,
                    Err(refusal) => return Ok(Admission::Refused(refusal)),
                },
            };
            self.staged.insert(channel.clone(), head);
        }
        let head = self.staged.get_mut(&channel).expect("the channel's head was staged just above");
        let creating = header.content_type == ContentType::GroupInfo;

        // A retry of a stored message is acknowledged even if the channel has moved on since, and a handshake
        // is never validated twice.
        let settled = header.group_id != head.group_id
            || header.epoch != head.epoch
            || (creating && head.next_seq > 1)
            || handshake.is_some();
        if settled {
            if let Some(seq) = store::seq_of_msg_id(self.conn, head.id, &msg_id)? {
                return Ok(Admission::Duplicate(seq));
            }
        }
        if creating && head.next_seq > 1 {
            return Ok(Admission::Refused(AppendError::ChannelExists(channel)));
        }
        if header.group_id != head.group_id {
            return Ok(Admission::Refused(AppendError::ForeignGroup(channel)));
        }
        if header.epoch != head.epoch {
            return Ok(Admission::Refused(AppendError::StaleEpoch {
                message_epoch: header.epoch,
                channel_epoch: head.epoch,
            }));
        }
        let channel_id = head.id;
        let next_group = match (&mut self.groups, creating) {
            (Some(groups), false) => match groups.check(self.conn, self.staged_groups, channel_id, &submission)? {
                Ok(next_group) => next_group,
                Err(refusal) => return Ok(Admission::Refused(refusal)),
            },
            _ => None,
        };

        let head = self.staged.get_mut(&channel).expect("the channel's head was staged just above");
        let message = StoredMessage::new(head.next_seq, header.epoch, now_ms, &msg_id, &frame);
        if !store::insert_message(self.conn, channel_id, &msg_id, &message)? {
            let seq = store::seq_of_msg_id(self.conn, channel_id, &msg_id)?.ok_or(StoreError::LostMessage)?;
            return Ok(Admission::Duplicate(seq));
        }
        head.next_seq += 1;
        if header.content_type == ContentType::Commit {
            head.epoch += 1;
        }
        if let Some((group, change)) = next_group {
            groups::stage(self.conn, self.staged_groups, channel_id, head.epoch, group, &change)?;
        }
        Ok(Admission::Stored { channel_id, message: Arc::new(message), epoch_after: head.epoch })
    }

    /// Creates the channel of `submission`, its first message: with followed groups that must be a GroupInfo
    /// signed by the stream's member, whose group the channel then follows, and within `creator`'s quota.
    fn create(
        &mut self,
        submission: &Submission<'_>,
        creator: Option<&Creator>,
    ) -> Result<Result<ChannelHead, AppendError>, StoreError> {
        let group = match &self.groups {
            Some(groups) => match groups.create(submission) {
                Ok(group) => Some(group),
                Err(refusal) => return Ok(Err(refusal)),
            },
            None => None,
        };
        let creator = creator.filter(|_| group.is_some());
        if let Some(refusal) = creator.map(|creator| self.over_quota(creator)).transpose()?.flatten() {
            return Ok(Err(refusal));
        }
        let header = submission.header;
        let id = store::insert_channel(self.conn, submission.channel.as_str(), &header.group_id, header.epoch)?;
        if let Some(creator) = creator {
            store::record_creator(self.conn, id, &creator.account, &creator.org)?;
        }
        if let Some(group) = group {
            let change = RosterChange { added: group.members().cloned().collect(), removed: Vec::new() };
            groups::stage(self.conn, self.staged_groups, id, header.epoch, group, &change)?;
        }
        Ok(Ok(ChannelHead { id, group_id: header.group_id.clone(), epoch: header.epoch, next_seq: 1 }))
    }

    /// Why `creator` may not create another channel, if it may not. Counted in the batch's transaction, so
    /// channels created earlier in the same batch count too.
    fn over_quota(&self, creator: &Creator) -> Result<Option<AppendError>, StoreError> {
        let (by_account, by_org) = store::channels_created(self.conn, &creator.account, &creator.org)?;
        Ok(admission::over_quota(self.quota, creator, by_account, by_org))
    }
}
