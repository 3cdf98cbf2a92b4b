//! SQLite WAL checkpoints off the writer thread.
//!
//! SQLite's automatic checkpoint runs inside whichever commit pushes the WAL past 1 000 pages and fsyncs the WAL
//! and the database file: 10-20 ms on this class of machine, during which the writer thread acknowledges
//! nothing, so every publish of that batch (and those queued behind it) waits. The writer's connection therefore
//! runs with automatic checkpoints off and wakes this thread every [`COMMITS_PER_CHECKPOINT`] commits; the
//! thread runs a PASSIVE checkpoint on its own connection, which never blocks the writer. Durability is
//! unchanged: a committed batch is in the WAL (fsynced first under `SyncMode::Full`) either way.

use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use rusqlite::Connection;

use crate::error::RelayError;
use crate::store::StoreError;

/// Commits between two checkpoints: a batch writes a handful of pages, so the WAL stays in the low MB.
const COMMITS_PER_CHECKPOINT: u64 = 128;

/// Owned by the writer thread; dropping it ends the checkpoint thread after its current checkpoint.
pub(crate) struct Checkpointer {
    commits: u64,
    wake: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the checkpoint thread on its own connection to `path` (a database already in WAL mode).
    pub fn start(path: &Path) -> Result<Self, RelayError> {
        let conn = Connection::open(path).map_err(StoreError::from)?;
        let (wake, wakeups) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("skytale-log-checkpoint".into())
            .spawn(move || checkpoint_on_wake(&conn, wakeups))
            .map_err(RelayError::WriterThread)?;
        Ok(Self { commits: 0, wake: Some(wake), thread: Some(thread) })
    }

    /// Counts one commit; every [`COMMITS_PER_CHECKPOINT`]th wakes the thread. Never blocks: a wake-up already
    /// pending covers this one.
    pub fn committed(&mut self) {
        self.commits += 1;
        if !self.commits.is_multiple_of(COMMITS_PER_CHECKPOINT) {
            return;
        }
        if let Some(wake) = &self.wake {
            match wake.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) => {}
                Err(TrySendError::Disconnected(())) => {
                    tracing::warn!("log checkpoint thread ended; the WAL grows until the relay restarts")
                }
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.wake.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn checkpoint_on_wake(conn: &Connection, wakeups: Receiver<()>) {
    for () in wakeups {
        if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(%error, "log checkpoint failed; retried after the next commits");
        }
    }
}
