//! The read side of each channel: what subscriptions need to follow the log without polling it.
//!
//! The log writer is the only one that changes a [`ChannelFeed`]: after a batch is committed to SQLite it pushes
//! the new messages into the feed's cache of recent messages and then advances the head, which wakes every
//! cursor waiting on that channel. Cursors read recent messages from the cache and older ones from SQLite.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use skytale_proto::ChannelName;
use tokio::sync::watch;

use crate::stored::{ReadLimit, StoredMessage};

/// Most recent messages kept in memory per channel...
const RECENT_MAX_MESSAGES: usize = 1024;
/// ...and at most this many bytes of them, so memory stays bounded however large payloads are.
const RECENT_MAX_BYTES: usize = 4 << 20;

/// Every channel feed in use, and where the feed of each channel with stored messages starts.
///
/// A feed lives only while something holds it: a subscription's cursor, a head query waiting for its turn, or
/// the log writer handing it a committed batch. When the last of them lets go, the feed (with its cache of
/// recent messages) is freed and a name that never had a message is forgotten, so subscribing to or querying
/// ever new names costs nothing once they are done with. The next user of a stored channel gets a new feed
/// starting from the head, epoch and retention mark the writer last recorded here.
pub struct ChannelHub {
    table: Arc<Mutex<FeedTable>>,
}

type FeedTable = HashMap<ChannelName, TableEntry>;

struct TableEntry {
    /// The log's state of a channel with stored messages, kept current by the log writer; `None` for a name
    /// with a feed in use but nothing stored.
    stored: Option<FeedStart>,
    /// The feed in use, if any.
    feed: Weak<ChannelFeed>,
}

impl Default for ChannelHub {
    fn default() -> Self {
        Self { table: Arc::new(Mutex::new(HashMap::new())) }
    }
}

fn lock(table: &Mutex<FeedTable>) -> MutexGuard<'_, FeedTable> {
    table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// Never drop an `Arc<ChannelFeed>` while the table is locked: the last one's `Drop` locks it too. Every method
// below returns the feed it upgraded instead.
impl ChannelHub {
    /// The feed of `channel`: the one in use, or a new one starting where the log is.
    pub fn feed(&self, channel: &ChannelName) -> Arc<ChannelFeed> {
        let mut table = lock(&self.table);
        let entry = table.entry(channel.clone()).or_insert_with(|| TableEntry { stored: None, feed: Weak::new() });
        if let Some(feed) = entry.feed.upgrade() {
            return feed;
        }
        let start = entry.stored.unwrap_or(FeedStart::EMPTY);
        let feed = Arc::new(ChannelFeed::new(channel.clone(), start, Arc::downgrade(&self.table)));
        entry.feed = Arc::downgrade(&feed);
        feed
    }

    /// The feed of `channel` if one is in use.
    pub fn in_use(&self, channel: &ChannelName) -> Option<Arc<ChannelFeed>> {
        lock(&self.table).get(channel).and_then(|entry| entry.feed.upgrade())
    }

    /// The feed of `channel`: the one in use, or a new one starting at `start` (a log that tells where a channel
    /// stands only by asking its store). `true` with a new feed: the caller keeps it current from `start` on.
    pub fn feed_from(&self, channel: &ChannelName, start: FeedStart) -> (Arc<ChannelFeed>, bool) {
        let mut table = lock(&self.table);
        let entry = table.entry(channel.clone()).or_insert_with(|| TableEntry { stored: None, feed: Weak::new() });
        if let Some(feed) = entry.feed.upgrade() {
            return (feed, false);
        }
        let feed = Arc::new(ChannelFeed::new(channel.clone(), start, Arc::downgrade(&self.table)));
        entry.feed = Arc::downgrade(&feed);
        (feed, true)
    }

    /// Records a channel loaded from the store at startup.
    pub fn restore(&self, channel: ChannelName, start: FeedStart) {
        lock(&self.table).insert(channel, TableEntry { stored: Some(start), feed: Weak::new() });
    }

    /// Called by the log writer once a batch is committed: records `channel`'s new head and epoch, and returns
    /// its feed if one is in use, for the writer to append the batch's messages to. Both happen under one lock
    /// with [`feed`](Self::feed), so a feed either existed before (and gets the messages) or starts after them.
    pub fn committed(&self, channel: &ChannelName, head: u64, epoch: u64) -> Option<Arc<ChannelFeed>> {
        let mut table = lock(&self.table);
        let entry = table.entry(channel.clone()).or_insert_with(|| TableEntry { stored: None, feed: Weak::new() });
        let stored = entry.stored.get_or_insert(FeedStart::EMPTY);
        stored.head = head;
        stored.epoch = Some(epoch);
        entry.feed.upgrade()
    }

    /// Called by the log writer once retention removed `channel`'s messages up to `through_seq`: records the
    /// new retention mark and returns the feed in use, if any, for the writer to expire its cache.
    pub fn expired(&self, channel: &ChannelName, through_seq: u64, through_epoch: u64) -> Option<Arc<ChannelFeed>> {
        let mut table = lock(&self.table);
        let entry = table.get_mut(channel)?;
        if let Some(stored) = entry.stored.as_mut() {
            stored.low_seq = through_seq + 1;
            stored.expired_epoch = Some(through_epoch);
        }
        entry.feed.upgrade()
    }

    /// Channels held in memory: every channel with stored messages, and every other name with a feed in use.
    pub fn channels_in_memory(&self) -> usize {
        lock(&self.table).len()
    }
}

/// Where a feed starts: the channel's log as the store holds it.
#[derive(Clone, Copy, Debug)]
pub struct FeedStart {
    /// Highest sequence number stored (0 if none ever was).
    pub head: u64,
    /// Current epoch, `None` for a channel with no message yet.
    pub epoch: Option<u64>,
    /// Oldest sequence number still retained.
    pub low_seq: u64,
    /// Epoch of the newest message removed by retention.
    pub expired_epoch: Option<u64>,
}

impl FeedStart {
    const EMPTY: FeedStart = FeedStart { head: 0, epoch: None, low_seq: 1, expired_epoch: None };
}

/// A subscription asked for messages the log no longer retains.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("channel {channel} retains messages from seq {low_seq} only")]
pub struct RetentionExpired {
    pub channel: String,
    pub low_seq: u64,
}

/// One channel's head, current epoch, retention mark and recent messages.
pub struct ChannelFeed {
    channel: ChannelName,
    /// The hub's table, to leave it when the last user is done (see [`ChannelHub`]).
    table: Weak<Mutex<FeedTable>>,
    head: watch::Sender<u64>,
    state: Mutex<FeedState>,
}

struct FeedState {
    epoch: Option<u64>,
    low_seq: u64,
    expired_epoch: Option<u64>,
    /// Contiguous run of the newest messages, ending at the head.
    recent: VecDeque<Arc<StoredMessage>>,
    recent_bytes: usize,
}

impl FeedState {
    /// Adds the newest message to the cache of recent ones, within its bounds.
    fn push(&mut self, message: Arc<StoredMessage>, epoch_after: u64) {
        self.epoch = Some(epoch_after);
        self.recent_bytes += message.size();
        self.recent.push_back(message);
        while self.recent.len() > RECENT_MAX_MESSAGES || self.recent_bytes > RECENT_MAX_BYTES {
            match self.recent.pop_front() {
                Some(old) => self.recent_bytes -= old.size(),
                None => break,
            }
        }
    }
}

impl ChannelFeed {
    fn new(channel: ChannelName, start: FeedStart, table: Weak<Mutex<FeedTable>>) -> Self {
        let (head, _) = watch::channel(start.head);
        let state = FeedState {
            epoch: start.epoch,
            low_seq: start.low_seq,
            expired_epoch: start.expired_epoch,
            recent: VecDeque::new(),
            recent_bytes: 0,
        };
        Self { channel, table, head, state: Mutex::new(state) }
    }

    fn state(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Highest sequence number committed to the log.
    pub fn head(&self) -> u64 {
        *self.head.borrow()
    }

    /// A receiver that wakes whenever the head advances.
    pub fn watch_head(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// The channel's current epoch (`None` for a channel without messages).
    pub fn epoch(&self) -> Option<u64> {
        self.state().epoch
    }

    /// Called by the log writer once `messages` (consecutive, in order) are committed; `epoch_after` is the
    /// channel's epoch after the last of them. Wakes the channel's cursors once for all of them.
    pub fn append(&self, messages: Vec<Arc<StoredMessage>>, epoch_after: u64) {
        let Some(head) = messages.last().map(|m| m.seq) else {
            return;
        };
        {
            let mut state = self.state();
            for message in messages {
                state.push(message, epoch_after);
            }
        }
        self.head.send_replace(head);
    }

    /// Appends `message` if it is the next one after the head, under the same lock as the head's update, and
    /// tells whether it did: a log with several sources of the same messages (its own appends, and a follower of
    /// everything stored) hands each message to the feed from both, and the first one counts.
    pub fn append_next(&self, message: Arc<StoredMessage>, epoch_after: u64) -> bool {
        let mut state = self.state();
        if message.seq != self.head() + 1 {
            return false;
        }
        let seq = message.seq;
        state.push(message, epoch_after);
        self.head.send_replace(seq);
        true
    }

    /// Called by the log writer once retention removed every message up to `through_seq`.
    pub fn expire_through(&self, through_seq: u64, through_epoch: u64) {
        let mut state = self.state();
        state.low_seq = through_seq + 1;
        state.expired_epoch = Some(through_epoch);
        while state.recent.front().is_some_and(|m| m.seq <= through_seq) {
            if let Some(old) = state.recent.pop_front() {
                state.recent_bytes -= old.size();
            }
        }
    }

    /// Oldest sequence number still retained.
    pub fn low_seq(&self) -> u64 {
        self.state().low_seq
    }

    /// Fails if a subscription from `from_seq` would miss messages removed by retention.
    pub fn check_retained_from_seq(&self, channel: &ChannelName, from_seq: u64) -> Result<(), RetentionExpired> {
        let low_seq = self.state().low_seq;
        if from_seq.max(1) < low_seq {
            return Err(RetentionExpired { channel: channel.to_string(), low_seq });
        }
        Ok(())
    }

    /// Fails if retention removed a message of epoch `from_epoch` or later (epochs never decrease along the log,
    /// so it is enough to compare with the newest removed message).
    pub fn check_retained_from_epoch(&self, channel: &ChannelName, from_epoch: u64) -> Result<(), RetentionExpired> {
        let state = self.state();
        match state.expired_epoch {
            Some(expired) if expired >= from_epoch => {
                Err(RetentionExpired { channel: channel.to_string(), low_seq: state.low_seq })
            }
            _ => Ok(()),
        }
    }

    /// Messages from `from_seq` on out of the recent cache, or `None` when `from_seq` is older than the cache
    /// (the caller then reads the store). An empty vector means `from_seq` is past the head.
    pub fn recent_from(&self, from_seq: u64, limit: ReadLimit) -> Option<Vec<Arc<StoredMessage>>> {
        let state = self.state();
        let cache_start = state.recent.front().map_or(self.head() + 1, |m| m.seq);
        if from_seq < cache_start {
            return None;
        }
        let skip = usize::try_from(from_seq - cache_start).unwrap_or(usize::MAX);
        let mut bytes = 0;
        let mut out = Vec::new();
        for message in state.recent.iter().skip(skip).take(limit.max_messages) {
            if !out.is_empty() && bytes + message.size() > limit.max_bytes {
                break;
            }
            bytes += message.size();
            out.push(Arc::clone(message));
        }
        Some(out)
    }
}

impl Drop for ChannelFeed {
    /// The last user is gone: the table stops pointing at this feed, and forgets a name without stored messages.
    fn drop(&mut self) {
        let Some(table) = self.table.upgrade() else {
            return;
        };
        let mut table = lock(&table);
        let forget = match table.get_mut(&self.channel) {
            // A feed created for the name since this one's last user left is in use: it stays.
            Some(entry) if entry.feed.strong_count() == 0 => {
                entry.feed = Weak::new();
                entry.stored.is_none()
            }
            _ => false,
        };
        if forget {
            table.remove(&self.channel);
        }
    }
}
