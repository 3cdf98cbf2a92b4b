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
use std::sync::mpsc::{self, SyncSender, TrySendError};

use rusqlite::Connection;

use crate::error::Error;

/// Commits between two checkpoints: a snapshot-sized commit writes a few pages, so the WAL stays in the low MB.
const COMMITS_PER_CHECKPOINT: u64 = 256;

/// Asks the background checkpointer to run; the thread ends when this is dropped (with the store).
pub(crate) struct Checkpointer {
    commits: AtomicU64,
    wake: SyncSender<()>,
}

impl Checkpointer {
    /// Starts the checkpoint thread on its own connection to `path` (already in WAL mode).
    pub fn start(path: &Path) -> Result<Self, Error> {
        let conn = Connection::open(path).map_err(Error::storage)?;
        let (wake, wakeups) = mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("skytale-checkpoint".into())
            .spawn(move || {
                for () in wakeups {
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        tracing::warn!(error = %e, "WAL checkpoint failed; retried after the next commits");
                    }
                }
            })
            .map_err(|e| Error::Runtime(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Self { commits: AtomicU64::new(0), wake })
    }

    /// Counts one commit; every [`COMMITS_PER_CHECKPOINT`]th wakes the thread (never blocks: a wake-up already
    /// pending covers this one).
    pub fn committed(&self) {
        if self.commits.fetch_add(1, Ordering::Relaxed) % COMMITS_PER_CHECKPOINT == COMMITS_PER_CHECKPOINT - 1 {
            match self.wake.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) => {}
                Err(TrySendError::Disconnected(())) => tracing::warn!("checkpoint thread ended; WAL grows until restart"),
            }
        }
    }
}
