//! SQLite WAL checkpoints off the hot path.
//!
//! With `synchronous=NORMAL` a commit does not fsync, but SQLite's automatic checkpoint, run inside whichever
//! commit pushes the WAL past 1 000 pages, fsyncs the WAL and the database file: 10-20 ms on this class of
//! machine against ~50 µs for a commit, landing on a random `send` or delivery batch (it made the client's p99
//! one-way latency 17 ms). So the store's connection runs with automatic checkpoints off and signals this
//! thread every [`COMMITS_PER_CHECKPOINT`] commits; the thread runs a PASSIVE checkpoint on its own connection,
//! which never blocks the writer. Durability is unchanged: a committed transaction is in the WAL either way.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Mutex;
use std::thread::JoinHandle;

use rusqlite::Connection;

use crate::error::Error;

/// Commits between two checkpoints: a snapshot-sized commit writes a few pages, so the WAL stays in the low MB.
const COMMITS_PER_CHECKPOINT: u64 = 256;

/// Asks the background checkpointer to run; [`Checkpointer::stop`] (or dropping it) ends the thread.
pub(crate) struct Checkpointer {
    commits: AtomicU64,
    wake: Mutex<Option<SyncSender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Starts the checkpoint thread on its own connection to `path` (already in WAL mode).
    pub fn start(path: &Path) -> Result<Self, Error> {
        let conn = Connection::open(path).map_err(Error::storage)?;
        let (wake, wakeups) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("skytale-checkpoint".into())
            .spawn(move || checkpoint_on_wake(&conn, wakeups))
            .map_err(|e| Error::Runtime(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Self { commits: AtomicU64::new(0), wake: Mutex::new(Some(wake)), thread: Mutex::new(Some(thread)) })
    }

    /// Counts one commit; every [`COMMITS_PER_CHECKPOINT`]th wakes the thread (never blocks: a wake-up already
    /// pending covers this one).
    pub fn committed(&self) {
        if self.commits.fetch_add(1, Ordering::Relaxed) % COMMITS_PER_CHECKPOINT != COMMITS_PER_CHECKPOINT - 1 {
            return;
        }
        let wake = self.wake.lock().unwrap_or_else(|p| p.into_inner());
        match wake.as_ref().map(|wake| wake.try_send(())) {
            None | Some(Ok(()) | Err(TrySendError::Full(()))) => {}
            Some(Err(TrySendError::Disconnected(()))) => {
                tracing::warn!("checkpoint thread ended; WAL grows until restart")
            }
        }
    }

    /// Ends the thread after its current checkpoint and joins it, so a closed client leaves no thread behind
    /// even while something still holds the store. Idempotent; commits after it are simply not checkpointed
    /// (SQLite checkpoints when the last connection closes).
    pub fn stop(&self) {
        self.wake.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn checkpoint_on_wake(conn: &Connection, wakeups: Receiver<()>) {
    for () in wakeups {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed; retried after the next commits");
        }
    }
}
