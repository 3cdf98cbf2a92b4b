//! Appends to a channel's subject, one task per channel on this relay. Each append is published with a
//! compare-and-set on the subject's last stream sequence (`Nats-Expected-Last-Subject-Sequence`), so JetStream
//! stores it only if no relay stored anything in the channel since this one last looked: whoever loses reads what
//! was stored meanwhile and judges the append again, which is how a second commit for an epoch becomes
//! `stale_epoch` however many relays receive one at the same instant. The `Nats-Msg-Id` makes a retry stored once,
//! through whichever relay it arrives. The application messages queued for a channel go in one atomic batch where
//! the servers have them ([`batch`]), one compare-and-set for all.

mod batch;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE;
use async_nats::jetstream::{self, stream::Stream};
use skytale_admin::AtomicHistogram;
use skytale_proto::ChannelName;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::entry::{self, Assigned, Entry, Handshakes};
use super::groups::{Followed, GroupRecord, Groups};
use super::reads;
use crate::admission::Submission;
use crate::append::{AppendError, AppendResult};
use crate::channel::ChannelHub;
use crate::log::AppendRequest;
use crate::membership::{ObservedGroup, RosterChange};
use crate::mls_framing::ContentType;
use crate::nats::is_wrong_last_sequence;
use crate::stored::{unix_millis, StoreError, StoredMessage};
use batch::Outcome;

/// Appends waiting for one channel's task; publishers beyond this wait (backpressure).
const QUEUE_CAPACITY: usize = 1024;
/// A channel's task ends after this long without an append, and is started again by the next one.
const IDLE: Duration = Duration::from_secs(60);
/// Msg-ids of a channel's recent messages the task remembers, to answer a retry without asking JetStream: a
/// client's pipeline of unacknowledged publishes is far shorter, and JetStream's own dedup answers the rest.
const RECENT_IDS: usize = 256;
/// Compare-and-sets one append may lose before it is given up: each means another relay stored a message in the
/// channel meanwhile.
const MAX_LOST_RACES: usize = 64;
/// How long one append may keep trying while JetStream does not answer (a leader election, a lost server): below
/// the clients' 30 s send deadline, so a client hears why rather than giving up on its own.
const APPEND_DEADLINE: Duration = Duration::from_secs(20);
/// Between two attempts after JetStream failed to answer.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Between two attempts after losing to a publish not yet readable (still being replicated).
const REPLICATION_PAUSE: Duration = Duration::from_millis(2);
/// How long a publish waits for JetStream's ack: far above a healthy R3 round trip (milliseconds), and short, so
/// that a publish caught by a leader's loss is sent again (same msg-id) to the next leader soon.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// An expected last subject sequence no subject ever has: a publish carrying it is stored by no server, and
/// JetStream answers it as a duplicate when its msg-id is stored (msg-ids are checked first), otherwise as a
/// wrong last sequence.
const NEVER_STORED: u64 = u64::MAX;

/// What the appenders share.
pub struct Target {
    pub js: jetstream::Context,
    pub stream: Stream,
    pub subject_prefix: String,
    pub hub: Arc<ChannelHub>,
    pub append_latency: AtomicHistogram,
    /// The channels' groups, with auth on; `None` with auth off, where only the framing rules apply.
    pub groups: Option<Arc<Groups>>,
    /// Whether the stream takes atomic batches ([`batch`]).
    pub batches: bool,
}

struct Job {
    request: AppendRequest,
    reply: Reply,
}

/// Where an append's outcome goes.
struct Reply {
    sender: oneshot::Sender<AppendResult>,
    received: Instant,
}

impl Reply {
    /// Hands `result` to the publisher, recording how long the append took.
    fn send(self, target: &Target, result: AppendResult) {
        target.append_latency.observe(self.received.elapsed());
        // The publisher may have gone; the message is stored either way.
        let _ = self.sender.send(result);
    }
}

struct Appender {
    queue: mpsc::Sender<Job>,
    task: JoinHandle<()>,
}

/// Every channel's appender on this relay.
pub struct Appenders {
    target: Arc<Target>,
    running: Arc<Mutex<HashMap<ChannelName, Appender>>>,
}

impl Appenders {
    pub fn new(target: Target) -> Self {
        Self { target: Arc::new(target), running: Arc::default() }
    }

    /// Queues `request` on its channel's task, starting the task if none runs.
    pub async fn submit(&self, request: AppendRequest) -> oneshot::Receiver<AppendResult> {
        let (sender, outcome) = oneshot::channel();
        let mut job = Job { request, reply: Reply { sender, received: Instant::now() } };
        // A task that ended idle between the lookup and the send gives the job back; the next turn starts anew.
        loop {
            let queue = self.queue(&job.request.channel);
            match queue.send(job).await {
                Ok(()) => return outcome,
                Err(mpsc::error::SendError(returned)) => job = returned,
            }
        }
    }

    fn queue(&self, channel: &ChannelName) -> mpsc::Sender<Job> {
        let mut running = self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let previous = match running.get(channel) {
            Some(appender) if !appender.queue.is_closed() => return appender.queue.clone(),
            // A task closed idle with appends still queued: the new one starts once those are stored, so a
            // publisher's appends keep their order.
            Some(_) => running.remove(channel).map(|appender| appender.task),
            None => None,
        };
        let (queue, jobs) = mpsc::channel(QUEUE_CAPACITY);
        let task =
            tokio::spawn(run(Arc::clone(&self.target), channel.clone(), jobs, Arc::downgrade(&self.running), previous));
        running.insert(channel.clone(), Appender { queue: queue.clone(), task });
        queue
    }

    /// Lets every queued append finish, then stops the tasks.
    pub async fn stop(&self) {
        let appenders: Vec<Appender> = {
            let mut running = self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            running.drain().map(|(_, appender)| appender).collect()
        };
        for Appender { queue, task } in appenders {
            drop(queue);
            if task.await.is_err() {
                tracing::error!("a JetStream log appender panicked");
            }
        }
    }
}

/// One channel's task: appends its jobs in order, after `previous` (the channel's task before it) ended, until it
/// has been idle for [`IDLE`] or every queue handle is gone ([`Appenders::stop`]).
async fn run(
    target: Arc<Target>,
    channel: ChannelName,
    mut jobs: mpsc::Receiver<Job>,
    running: Weak<Mutex<HashMap<ChannelName, Appender>>>,
    previous: Option<JoinHandle<()>>,
) {
    if let Some(previous) = previous {
        // A panic there was logged by `stop` or is moot: only the order matters here.
        let _ = previous.await;
    }
    let mut tail = None;
    loop {
        let job = match tokio::time::timeout(IDLE, jobs.recv()).await {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(_idle) => {
                let Some(running) = running.upgrade() else { return };
                let mut running = running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                // Closed under the lock: no append can be queued after this, so an empty queue stays empty.
                jobs.close();
                if jobs.is_empty() {
                    running.remove(&channel);
                    return;
                }
                continue;
            }
        };
        let mut queued = VecDeque::from([job]);
        while queued.len() < batch::MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => queued.push_back(job),
                Err(_) => break,
            }
        }
        append_all(&target, &channel, &mut tail, queued).await;
    }
}

/// Appends `jobs` in order: runs of appends a batch can take by atomic batches where the stream has them, the rest
/// one by one.
async fn append_all(target: &Target, channel: &ChannelName, tail: &mut Option<Tail>, mut jobs: VecDeque<Job>) {
    let mut lost_races = 0;
    while !jobs.is_empty() {
        let mut one_by_one = 1;
        if let Some(loaded) = tail.as_mut().filter(|_| target.batches && lost_races < MAX_LOST_RACES) {
            let batched = batch::batchable(target, loaded, jobs.make_contiguous());
            if batched >= 2 {
                match batch::publish(target, channel, loaded, &jobs.make_contiguous()[..batched]).await {
                    Outcome::Stored(seqs) => {
                        for (job, seq) in jobs.drain(..batched).zip(seqs) {
                            job.reply.send(target, Ok(seq));
                        }
                        continue;
                    }
                    Outcome::Moved => {
                        lost_races += 1;
                        continue;
                    }
                    Outcome::Unsure => one_by_one = batched,
                }
            }
        }
        for Job { request, reply } in jobs.drain(..one_by_one) {
            let result = append(target, channel, tail, request).await;
            reply.send(target, result);
        }
    }
}

/// The channel's log as this relay last saw it.
struct Tail {
    subject: String,
    /// Stream sequence of the channel's newest message, 0 if it has none.
    stream_seq: u64,
    /// Seq of the channel's newest message, 0 if it has none.
    head: u64,
    /// The channel's group and epoch; `None` before its first message.
    bound: Option<(Vec<u8>, u64)>,
    /// The epoch of the newest message, for the next one's [`Assigned::previous_epoch`].
    last_epoch: Option<u64>,
    /// The channel's group as of its newest message, when the relay follows groups and the channel's.
    group: Option<GroupRecord>,
    recent_ids: RecentIds,
}

#[derive(Default)]
struct RecentIds {
    seqs: HashMap<String, u64>,
    order: VecDeque<String>,
}

impl RecentIds {
    fn insert(&mut self, msg_id: String, seq: u64) {
        if self.seqs.insert(msg_id.clone(), seq).is_none() {
            self.order.push_back(msg_id);
        }
        while self.order.len() > RECENT_IDS {
            if let Some(old) = self.order.pop_front() {
                self.seqs.remove(&old);
            }
        }
    }
}

impl Tail {
    async fn load(target: &Target, channel: &ChannelName) -> Result<Self, StoreError> {
        let subject = entry::subject(&target.subject_prefix, channel);
        let mut tail = Tail {
            subject,
            stream_seq: 0,
            head: 0,
            bound: None,
            last_epoch: None,
            group: None,
            recent_ids: RecentIds::default(),
        };
        let last = reads::last(&target.stream, &tail.subject).await?;
        if let Some(last) = &last {
            tail.advance(last);
        }
        if let Some(groups) = &target.groups {
            tail.group = followed(groups.as_of(channel, last.as_ref(), None).await?);
        }
        Ok(tail)
    }

    fn advance(&mut self, entry: &Entry) {
        self.stream_seq = entry.stream_seq;
        self.head = entry.message.seq;
        self.bound = Some((entry.group_id.clone(), entry.epoch_after));
        self.last_epoch = Some(entry.message.epoch);
        self.recent_ids.insert(entry.msg_id.clone(), entry.message.seq);
    }

    /// Reads what other relays stored in the channel since this one last looked, handing it to the local feed.
    async fn catch_up(&mut self, target: &Target, channel: &ChannelName) -> Result<(), StoreError> {
        while let Some(next) = reads::next_from(&target.stream, &self.subject, Some(self.stream_seq + 1)).await? {
            // The group first: if it cannot be brought up to the message, the tail stays before it too, so no
            // append is judged against a group older than the log it expects.
            if let Some(groups) = &target.groups {
                if next.newest_handshake() != self.group.as_ref().map(|group| group.as_of) {
                    self.group = followed(groups.as_of(channel, Some(&next), self.group.as_ref()).await?);
                }
            }
            self.advance(&next);
            feed_locally(target, channel, next.message, next.epoch_after);
        }
        Ok(())
    }

    /// Where the next message stands among the channel's handshakes; `None` without followed groups.
    fn handshakes(&self, following: bool, request: &AppendRequest) -> Option<Handshakes> {
        following.then(|| Handshakes {
            prior: self.group.as_ref().map_or(0, |group| group.as_of),
            is_handshake: request.header.content_type != ContentType::Application,
        })
    }
}

fn followed(channel: Followed) -> Option<GroupRecord> {
    match channel {
        Followed::Group(record) => Some(*record),
        Followed::NoChannel | Followed::Untracked => None,
    }
}

/// What the Delivery-Service rules say of an append against the channel's log as it stands.
enum Verdict {
    Store {
        epoch_after: u64,
        group: GroupChange,
    },
    /// Refused, unless the msg-id is already stored: then it is a retry of that message.
    Refuse(AppendError),
}

/// What storing a message does to its channel's followed group.
enum GroupChange {
    Unchanged,
    Created(Box<ObservedGroup>),
    Changed(Box<ObservedGroup>, RosterChange),
}

/// The Delivery-Service rules (docs/protocol.md, "Delivery-Service rules"): the first message binds the channel
/// to its group; a GroupInfo only creates; every message carries the channel's current epoch; a commit opens the
/// next one. With followed `groups`, the rules of [`Submission`] too.
fn judge(tail: &Tail, request: &AppendRequest, groups: Option<&Groups>) -> Verdict {
    let header = &request.header;
    let creating = header.content_type == ContentType::GroupInfo;
    let epoch_after = header.epoch + u64::from(header.content_type == ContentType::Commit);
    let submission = Submission {
        channel: &request.channel,
        header,
        blob: request.handshake.as_deref(),
        sender: request.sender.as_ref(),
    };
    let Some((group_id, epoch)) = &tail.bound else {
        return match groups.map(|groups| submission.create(groups.observer())) {
            None => Verdict::Store { epoch_after, group: GroupChange::Unchanged },
            Some(Ok(group)) => Verdict::Store { epoch_after, group: GroupChange::Created(Box::new(group)) },
            Some(Err(refusal)) => Verdict::Refuse(refusal),
        };
    };
    if creating {
        return Verdict::Refuse(AppendError::ChannelExists(request.channel.clone()));
    } else if header.group_id != *group_id {
        return Verdict::Refuse(AppendError::ForeignGroup(request.channel.clone()));
    } else if header.epoch != *epoch {
        return Verdict::Refuse(AppendError::StaleEpoch { message_epoch: header.epoch, channel_epoch: *epoch });
    }
    let group = match (groups, &tail.group) {
        (None, _) => GroupChange::Unchanged,
        (Some(_), None) => return Verdict::Refuse(AppendError::Untracked(request.channel.clone())),
        (Some(_), Some(record)) => match submission.check(&record.group) {
            Ok(None) => GroupChange::Unchanged,
            Ok(Some((group, change))) => GroupChange::Changed(Box::new(group), change),
            Err(refusal) => return Verdict::Refuse(refusal),
        },
    };
    Verdict::Store { epoch_after, group }
}

fn storage(error: impl std::fmt::Display) -> AppendError {
    AppendError::Storage(error.to_string())
}

/// Appends one request, with the channel's tail loaded on first use.
async fn append(
    target: &Target,
    channel: &ChannelName,
    tail: &mut Option<Tail>,
    request: AppendRequest,
) -> AppendResult {
    let tail = match tail {
        Some(tail) => tail,
        None => tail.insert(Tail::load(target, channel).await.map_err(storage)?),
    };
    let mut reserved = false;
    let result = store(target, channel, tail, &request, &mut reserved).await;
    if let (true, Some(groups), Some(creator)) = (reserved, &target.groups, &request.creator) {
        groups.release(creator).await;
    }
    result
}

/// Stores `request` in the channel `tail` follows, until stored, refused, or out of time. A creation counted
/// against its creator's quota sets `reserved`, and clears it once stored.
async fn store(
    target: &Target,
    channel: &ChannelName,
    tail: &mut Tail,
    request: &AppendRequest,
    reserved: &mut bool,
) -> AppendResult {
    let groups = target.groups.as_deref();
    let deadline = Instant::now() + APPEND_DEADLINE;
    let (mut lost_races, mut failures) = (0, 0);
    loop {
        if Instant::now() > deadline {
            return Err(AppendError::Storage(format!(
                "JetStream did not store the message in {APPEND_DEADLINE:?}: is a majority of the NATS servers up?"
            )));
        }
        if let Some(&seq) = tail.recent_ids.seqs.get(&request.msg_id) {
            return Ok(seq);
        }
        let (expected, epoch_after, change, refusal) = match judge(tail, request, groups) {
            Verdict::Store { epoch_after, group } => (tail.stream_seq, epoch_after, group, None),
            Verdict::Refuse(refusal) => (NEVER_STORED, 0, GroupChange::Unchanged, Some(refusal)),
        };
        if let (GroupChange::Created(_), Some(groups), Some(creator), false) =
            (&change, groups, &request.creator, *reserved)
        {
            groups.reserve(creator).await.map_err(storage)??;
            *reserved = true;
        }
        let assigned = Assigned {
            message: StoredMessage::new(
                tail.head + 1,
                request.header.epoch,
                unix_millis(),
                &request.msg_id,
                &request.frame,
            ),
            msg_id: request.msg_id.clone(),
            group_id: request.header.group_id.clone(),
            epoch_after,
            previous_epoch: tail.last_epoch,
            handshakes: tail.handshakes(groups.is_some(), request),
        };
        let mut headers = assigned.headers(channel);
        headers.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, expected.to_string());
        let published = match target.js.publish_with_headers(tail.subject.clone(), headers, request.frame.clone()).await
        {
            Ok(ack) => ack.await,
            Err(error) => Err(error),
        };
        match published {
            Ok(ack) if ack.duplicate => {
                let stored =
                    reads::next_from(&target.stream, &tail.subject, Some(ack.sequence)).await.map_err(storage)?;
                tail.catch_up(target, channel).await.map_err(storage)?;
                return match stored {
                    Some(entry) if entry.stream_seq == ack.sequence => Ok(entry.message.seq),
                    // Stored and already removed by retention: what it was given cannot be told any more.
                    _ => Err(AppendError::Storage(format!(
                        "msg-id {} was stored before and is gone from the log since",
                        request.msg_id
                    ))),
                };
            }
            Ok(ack) => {
                let entry = assigned.stored_at(ack.sequence);
                *reserved = false;
                if let Some(groups) = groups {
                    tail.group = match (change, tail.group.take()) {
                        (GroupChange::Created(group), _) => {
                            Some(GroupRecord::created(ack.sequence, *group, request.header.epoch))
                        }
                        (GroupChange::Changed(group, change), Some(record)) => {
                            Some(record.after(ack.sequence, *group, &change, epoch_after))
                        }
                        (_, unchanged) => unchanged,
                    };
                    if let (Some(record), Some(_)) = (&tail.group, &request.handshake) {
                        // The message is stored either way; a reader catches up on a record left behind.
                        if let Err(error) = groups.save(channel, record).await {
                            tracing::warn!(%channel, %error, "cannot write the channel's group record");
                        }
                    }
                }
                tail.advance(&entry);
                feed_locally(target, channel, entry.message, epoch_after);
                return Ok(tail.head);
            }
            Err(error) if is_wrong_last_sequence(&error) => {
                // Not a stored msg-id (JetStream would have said duplicate): a refusal stands, unless the channel
                // moved since this relay looked, which reading on tells.
                let before = tail.stream_seq;
                if let Err(error) = tail.catch_up(target, channel).await {
                    tracing::warn!(%channel, %error, "cannot read the channel's log; retrying");
                    tokio::time::sleep(RETRY_PAUSE).await;
                } else if tail.stream_seq != before {
                    lost_races += 1;
                    if lost_races >= MAX_LOST_RACES {
                        return Err(AppendError::Storage(format!(
                            "gave up appending to {channel} after losing {MAX_LOST_RACES} compare-and-sets in a row \
                             to other relays storing messages in it"
                        )));
                    }
                } else if let Some(refusal) = refusal {
                    return Err(refusal);
                } else {
                    // The winner is still being replicated (JetStream's 10164): readable in a moment.
                    tokio::time::sleep(REPLICATION_PAUSE).await;
                }
            }
            Err(error) => {
                // The ack is lost (a JetStream leader change, a lost connection): the publish may be stored. The
                // next attempt carries the same msg-id, so it is stored at most once either way.
                // Once per append at warn: a leader election fails every attempt for a few seconds.
                failures += 1;
                if failures == 1 {
                    tracing::warn!(%channel, %error, "JetStream publish failed; retrying until {APPEND_DEADLINE:?}");
                } else {
                    tracing::debug!(%channel, %error, attempt = failures, "JetStream publish failed again");
                }
                tokio::time::sleep(RETRY_PAUSE).await;
                // Unread now, read at the next lost compare-and-set.
                if let Err(error) = tail.catch_up(target, channel).await {
                    tracing::warn!(%channel, %error, "cannot read the channel's log; retrying");
                }
            }
        }
    }
}

/// Hands a stored message to this relay's feed of the channel, if one is in use and it is the feed's next; the
/// feed's follower delivers it otherwise.
fn feed_locally(target: &Target, channel: &ChannelName, message: StoredMessage, epoch_after: u64) {
    if let Some(feed) = target.hub.in_use(channel) {
        feed.append_next(Arc::new(message), epoch_after);
    }
}
