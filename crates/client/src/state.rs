//! The live state of one channel: its MLS group, registry row and progress, shared by the inbound worker, the
//! operations (send, add, remove, ...) and every `Channel` handle.
//!
//! Locking: `core` (the group and registry row) is held only for local work, never across a network round trip,
//! so the inbound worker can always make progress. `ops` serialises commit-producing operations of the channel:
//! mls-rs keeps one pending commit per group, so two concurrent commits would overwrite each other's.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, MutexGuard};

use skytale_proto::ChannelName;
use tokio::sync::{watch, Mutex};
use tokio::time::{timeout_at, Instant};

use crate::context::Context;
use crate::error::Error;
use crate::frames::StartPoint;
use crate::mls::{mls_err, MlsGroup};
use crate::ratchet_gap::RatchetGap;
use crate::store::{ChannelRecord, ChannelStatus, InboxItem};
use crate::transport::SEND_DEADLINE;

/// Where the channel stands, published after every change so waiters (recv, commit retries) wake up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Progress {
    pub applied_seq: u64,
    pub epoch: u64,
    pub join_epoch: u64,
    pub lifecycle: Lifecycle,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    Active,
    Removed,
    /// This client left with `leave()`; the channel is forgotten.
    Left,
    /// The relay has no log for the channel although this client applied part of it or joined it: the relay's data
    /// was reset (a new `skytale dev` stack). Nothing can be sent or received on it; see `lost_error`.
    Lost,
}

impl Progress {
    /// Resume right after the last applied message, or from the join epoch if nothing was applied yet.
    pub fn resume_point(&self) -> StartPoint {
        if self.applied_seq > 0 {
            StartPoint::Seq(self.applied_seq + 1)
        } else {
            StartPoint::Epoch(self.join_epoch)
        }
    }
}

pub(crate) struct ChannelCore {
    pub group: MlsGroup,
    pub record: ChannelRecord,
    /// Inbox rows whose store transaction failed; written by the next successful one (see `inbound`).
    pub unsaved: Vec<InboxItem>,
    /// The bytes of the commit this member published and mls-rs holds as pending, so its echo is applied
    /// directly (see [`apply_own_commit`](crate::mls::apply_own_commit)). Memory only: after a restart the echo
    /// takes the ordinary path.
    pub own_commit: Option<Vec<u8>>,
    /// Keys of this member's ratchet used since the relay last stored one of its messages (`ratchet_gap`).
    pub gap: RatchetGap,
}

impl ChannelCore {
    pub fn progress(&self, lifecycle: Lifecycle) -> Progress {
        Progress {
            applied_seq: self.record.applied_seq,
            epoch: self.group.current_epoch(),
            join_epoch: self.record.join_epoch,
            lifecycle,
        }
    }

    /// Stages the group state and writes it with the registry row (and nothing for the inbox).
    pub fn save(&mut self, ctx: &Context) -> Result<(), Error> {
        self.group.write_to_storage().map_err(mls_err("cannot save group state"))?;
        ctx.store.persist(&self.record, &[])
    }
}

pub(crate) struct ChannelState {
    pub name: ChannelName,
    pub ctx: Arc<Context>,
    pub core: Mutex<ChannelCore>,
    pub ops: Mutex<()>,
    pub progress: watch::Sender<Progress>,
    /// Local failures (storage) to report on `recv`, oldest first; each is handed out once.
    failures: std::sync::Mutex<VecDeque<String>>,
    /// Sequence number of the newest inbox item `recv` handed out in this process (0: none yet).
    taken_seq: AtomicU64,
}

impl ChannelState {
    pub fn new(name: ChannelName, ctx: Arc<Context>, group: MlsGroup, record: ChannelRecord) -> Arc<Self> {
        let lifecycle = match record.status {
            ChannelStatus::Active => Lifecycle::Active,
            ChannelStatus::Removed => Lifecycle::Removed,
        };
        let core = ChannelCore { group, record, unsaved: Vec::new(), own_commit: None, gap: RatchetGap::default() };
        let progress = watch::Sender::new(core.progress(lifecycle));
        Arc::new(Self {
            name,
            ctx,
            core: Mutex::new(core),
            ops: Mutex::new(()),
            progress,
            failures: Default::default(),
            taken_seq: AtomicU64::new(0),
        })
    }

    /// Queues a failure for `recv` and wakes it.
    pub fn report_failure(&self, reason: String) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.push_back(reason);
        }
        self.progress.send_modify(|_| {});
    }

    /// The oldest failure not yet reported.
    pub fn take_failure(&self) -> Option<String> {
        self.failures.lock().ok().and_then(|mut failures| failures.pop_front())
    }

    /// Records that `recv` handed out the inbox item at `seq`.
    pub fn note_taken(&self, seq: u64) {
        self.taken_seq.fetch_max(seq, Ordering::AcqRel);
    }

    /// Sequence number of the newest message in the inbox, handed out or still waiting (0: none). The store is
    /// read first: an item taken meanwhile is then counted by `taken_seq`, which `take_inbox` moves before it
    /// releases the store, so none is missed.
    pub fn delivered_seq(&self) -> Result<u64, Error> {
        let waiting = self.ctx.store.newest_inbox_seq(self.name.as_str())?.unwrap_or(0);
        Ok(waiting.max(self.taken_seq.load(Ordering::Acquire)))
    }

    pub fn lifecycle(&self) -> Lifecycle {
        self.progress.borrow().lifecycle
    }

    /// Marks the channel as owned by this client (it admits invite joiners), durably.
    pub async fn become_owner(&self) -> Result<(), Error> {
        let mut core = self.core.lock().await;
        if !core.record.owner {
            core.record.owner = true;
            core.save(&self.ctx)?;
        }
        Ok(())
    }

    pub fn removed_error(&self) -> Error {
        Error::Channel(format!("removed from channel {} by another member", self.name))
    }

    pub fn lost_error(&self) -> Error {
        Error::Channel(format!(
            "channel {name} is gone from the relay: data_dir {dir} holds it, but the relay has no message of it, so \
             the relay's data was reset (e.g. a new skytale dev stack) and the channel cannot be used. To start \
             over, use a new data_dir (or delete {dir}), then create or join {name} again",
            name = self.name,
            dir = self.ctx.data_dir.display()
        ))
    }

    /// Fails unless the channel is still active.
    pub fn ensure_active(&self) -> Result<(), Error> {
        if self.ctx.is_closed() {
            return Err(Error::Runtime("client is closed".into()));
        }
        match self.lifecycle() {
            Lifecycle::Active => Ok(()),
            Lifecycle::Removed => Err(self.removed_error()),
            Lifecycle::Left => Err(Error::Channel(format!("channel {} was left", self.name))),
            Lifecycle::Lost => Err(self.lost_error()),
        }
    }

    /// Waits (up to the send deadline) until the channel's progress satisfies `done`.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&Progress) -> bool) -> Result<(), Error> {
        let deadline = Instant::now() + SEND_DEADLINE;
        let mut progress = self.progress.subscribe();
        loop {
            let now = *progress.borrow_and_update();
            if done(&now) {
                return Ok(());
            }
            self.ensure_active()?;
            if timeout_at(deadline, progress.changed()).await.is_err() {
                return Err(Error::Transport(format!(
                    "channel {} did not reach {what} within {SEND_DEADLINE:?}",
                    self.name
                )));
            }
        }
    }
}

/// The open channels of a client, by name. The client's core owns it; a channel's state never refers to it (nor
/// to the core), so the states and the [`Context`] they share cannot keep each other alive.
#[derive(Default)]
pub(crate) struct ChannelTable(std::sync::Mutex<HashMap<String, Arc<ChannelState>>>);

impl ChannelTable {
    pub fn lock(&self) -> Result<MutexGuard<'_, HashMap<String, Arc<ChannelState>>>, Error> {
        self.0.lock().map_err(|_| Error::Runtime("channel table lock poisoned".into()))
    }

    pub fn get(&self, name: &str) -> Result<Option<Arc<ChannelState>>, Error> {
        Ok(self.lock()?.get(name).cloned())
    }

    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}
