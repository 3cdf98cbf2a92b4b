//! Wake-ups for long-polls: a request handler waiting for "a join arrived on channel C" or "join J was
//! welcomed" sleeps on a [`Notify`] keyed by that subject, and the handler that changes the database rings it.
//!
//! The database stays the source of truth: a waiter arms its wake-up *before* reading the database and re-reads
//! after every wake-up, so a change between the read and the sleep is never missed, and a spurious or lost
//! signal costs at most one extra read. These are one process's waiters; with PostgreSQL, [`peers`](crate::peers)
//! carries each change to the other API instances on the same database, whose waiters wake at once as well.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use skytale_admin::GaugeGuard;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

/// What a waiter waits for.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) enum Subject {
    /// A new join request on the channel.
    ChannelJoins(String),
    /// The join request was welcomed or rejected.
    Join(String),
}

impl Subject {
    /// One line of text (`channel-joins NAME`, `join ID`), as the other API instances receive it.
    pub(crate) fn to_line(&self) -> String {
        match self {
            Self::ChannelJoins(channel) => format!("{CHANNEL_JOINS} {channel}"),
            Self::Join(join_id) => format!("{JOIN} {join_id}"),
        }
    }

    /// The subject of a line [`to_line`](Self::to_line) wrote; `None` for anything else.
    pub(crate) fn from_line(line: &str) -> Option<Self> {
        match line.split_once(' ')? {
            (CHANNEL_JOINS, channel) => Some(Self::ChannelJoins(channel.to_owned())),
            (JOIN, join_id) => Some(Self::Join(join_id.to_owned())),
            _ => None,
        }
    }
}

const CHANNEL_JOINS: &str = "channel-joins";
const JOIN: &str = "join";

/// Registry of wake-ups, one [`Notify`] per subject that currently has waiters.
#[derive(Debug)]
pub(crate) struct Signals {
    subjects: Mutex<HashMap<Subject, Weak<Notify>>>,
    shutdown: watch::Receiver<bool>,
    /// The long-polls in [`wait_for`](Self::wait_for) now.
    waiting: Gauge,
}

impl Signals {
    /// `shutdown` turns true when the server stops; every wait then returns at once so shutdown is not held up
    /// by open long-polls. `waiting` counts the waits in progress.
    pub(crate) fn new(shutdown: watch::Receiver<bool>, waiting: Gauge) -> Self {
        Self { subjects: Mutex::new(HashMap::new()), shutdown, waiting }
    }

    /// Wakes everyone waiting on `subject` in this process.
    pub(crate) fn ring_here(&self, subject: &Subject) {
        let notify = self.lock().get(subject).and_then(Weak::upgrade);
        if let Some(notify) = notify {
            notify.notify_waiters();
        }
    }

    /// Wakes every waiter in this process, to re-read the database: after wake-ups may have been missed.
    pub(crate) fn ring_everyone_here(&self) {
        let notifies: Vec<Arc<Notify>> = self.lock().values().filter_map(Weak::upgrade).collect();
        for notify in notifies {
            notify.notify_waiters();
        }
    }

    /// Calls `check` until it yields a value, re-running it whenever `subject` rings, for at most `wait`.
    /// Returns the last `check` result (`None` on timeout or shutdown).
    pub(crate) async fn wait_for<T, E, F, Fut>(
        &self,
        subject: Subject,
        wait: Duration,
        mut check: F,
    ) -> Result<Option<T>, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        let _waiting = GaugeGuard::new(&self.waiting);
        let notify = self.subscribe(subject);
        let deadline = Instant::now() + wait;
        let mut shutdown = self.shutdown.clone();
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(found) = check().await? {
                return Ok(Some(found));
            }
            if *shutdown.borrow() {
                return Ok(None);
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(None),
                _ = shutdown.changed() => return Ok(None),
            }
        }
    }

    fn subscribe(&self, subject: Subject) -> Arc<Notify> {
        let mut subjects = self.lock();
        if let Some(existing) = subjects.get(&subject).and_then(Weak::upgrade) {
            return existing;
        }
        subjects.retain(|_, notify| notify.strong_count() > 0);
        let notify = Arc::new(Notify::new());
        subjects.insert(subject, Arc::downgrade(&notify));
        notify
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Subject, Weak<Notify>>> {
        // The map holds no invariant a panicking holder could break, so a poisoned lock is still usable.
        self.subjects.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
