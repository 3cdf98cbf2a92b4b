//! SQLite WAL checkpoints off the writer's commits, shared by the relay's log and the client's `state.db`.
//!
//! SQLite's automatic checkpoint runs inside whichever commit pushes the WAL past 1 000 pages, and it fsyncs the
//! WAL and the database file: 10-20 ms on this class of machine against ~50 µs for a commit. In the relay the
//! writer thread acknowledges nothing meanwhile, so every publish of that batch (and those queued behind it)
//! waits; in the client it lands on a random `send` or delivery batch (it made the client's p99 one-way latency
//! 17 ms). So the writer's connection runs with `wal_autocheckpoint=0` and counts its commits here; every
//! `commits_per_checkpoint` commits a thread wakes and runs a PASSIVE checkpoint on its own connection, which
//! never blocks the writer. Durability is unchanged: a committed transaction is in the WAL (fsynced first when the
//! writer runs `synchronous=FULL`) either way.

use std::num::NonZeroU64;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Mutex;
use std::thread::JoinHandle;

use rusqlite::Connection;

/// Why [`Checkpointer::start`] failed; callers map it to their own error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the checkpoint connection: {0}")]
    Open(#[from] rusqlite::Error),
    #[error("cannot start the checkpoint thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Wakes the background checkpoint thread every `commits_per_checkpoint` commits; [`Checkpointer::stop`] (or
/// dropping it) ends the thread.
pub struct Checkpointer {
    commits: AtomicU64,
    commits_per_checkpoint: u64,
    wake: Mutex<Option<SyncSender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Starts the thread `thread_name` on its own connection to `path`, a database already in WAL mode whose
    /// writer has turned automatic checkpoints off.
    pub fn start(path: &Path, commits_per_checkpoint: NonZeroU64, thread_name: &str) -> Result<Self, StartError> {
        let conn = Connection::open(path)?;
        let (wake, wakeups) = mpsc::sync_channel::<()>(1);
        let thread =
            std::thread::Builder::new().name(thread_name.into()).spawn(move || checkpoint_on_wake(&conn, wakeups))?;
        Ok(Self {
            commits: AtomicU64::new(0),
            commits_per_checkpoint: commits_per_checkpoint.get(),
            wake: Mutex::new(Some(wake)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Counts one commit; every `commits_per_checkpoint`th wakes the thread. Never blocks: a wake-up already
    /// pending covers this one.
    pub fn committed(&self) {
        let commits = self.commits.fetch_add(1, Ordering::Relaxed) + 1;
        if !commits.is_multiple_of(self.commits_per_checkpoint) {
            return;
        }
        let wake = self.wake.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match wake.as_ref().map(|wake| wake.try_send(())) {
            None | Some(Ok(()) | Err(TrySendError::Full(()))) => {}
            Some(Err(TrySendError::Disconnected(()))) => {
                tracing::warn!("WAL checkpoint thread ended; the WAL grows until restart")
            }
        }
    }

    /// Ends the thread after its current checkpoint and joins it, so an owner that is closing leaves no thread
    /// behind even while something still holds it. Idempotent; commits after it are simply not checkpointed
    /// (SQLite checkpoints when the last connection closes).
    pub fn stop(&self) {
        self.wake.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take() {
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
        if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(%error, "WAL checkpoint failed; retried after the next commits");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use super::*;

    const EVERY: NonZeroU64 = NonZeroU64::new(4).unwrap();

    /// A WAL database with automatic checkpoints off, as the relay and the client open theirs.
    fn writer(dir: &Path) -> (Connection, PathBuf) {
        let path = dir.join("test.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch("CREATE TABLE t (v BLOB NOT NULL)").unwrap();
        (conn, path)
    }

    fn insert(conn: &Connection) {
        conn.execute("INSERT INTO t (v) VALUES (zeroblob(10000))", []).unwrap();
    }

    fn sibling(path: &Path, suffix: &str) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        name.into()
    }

    /// (frames in the WAL, frames already checkpointed into the database), read from the wal-index without
    /// taking part in it: `mxFrame` at byte 16 of its header, `nBackfill` at byte 96 (sqlite.org/walformat.html).
    fn wal_frames(path: &Path) -> (u32, u32) {
        let shm = std::fs::read(sibling(path, "-shm")).unwrap();
        let word = |at: usize| u32::from_ne_bytes(shm[at..at + 4].try_into().unwrap());
        (word(16), word(96))
    }

    fn thread_running(name: &str) -> bool {
        std::fs::read_dir("/proc/self/task").unwrap().any(|task| {
            std::fs::read_to_string(task.unwrap().path().join("comm")).is_ok_and(|comm| comm.trim_end() == name)
        })
    }

    /// Whether `condition` holds within a second: a new thread names itself once it runs, and the kernel drops
    /// an ended one from /proc a moment after `join` returns.
    fn soon(condition: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(1);
        while !condition() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    #[test]
    fn every_nth_commit_checkpoints_and_the_wal_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, path) = writer(dir.path());
        let checkpointer = Checkpointer::start(&path, EVERY, "wal-test-wake").unwrap();
        for _ in 1..EVERY.get() {
            insert(&conn);
            checkpointer.committed();
        }
        std::thread::sleep(Duration::from_millis(100));
        let (frames, checkpointed) = wal_frames(&path);
        assert!(frames > 0);
        assert_eq!(checkpointed, 0, "no checkpoint before the Nth commit");

        insert(&conn);
        checkpointer.committed();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (frames, checkpointed) = wal_frames(&path);
            if checkpointed == frames {
                break;
            }
            assert!(Instant::now() < deadline, "the Nth commit did not checkpoint the WAL ({checkpointed}/{frames})");
            std::thread::sleep(Duration::from_millis(10));
        }

        // Everything was checkpointed, so the next commit writes from the start of the WAL instead of growing it.
        let (frames, _) = wal_frames(&path);
        let wal_size = std::fs::metadata(sibling(&path, "-wal")).unwrap().len();
        insert(&conn);
        assert!(wal_frames(&path).0 < frames, "the WAL did not restart");
        assert_eq!(std::fs::metadata(sibling(&path, "-wal")).unwrap().len(), wal_size);
        checkpointer.stop();
    }

    #[test]
    fn stop_joins_the_thread_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, path) = writer(dir.path());
        let checkpointer = Checkpointer::start(&path, EVERY, "wal-test-stop").unwrap();
        assert!(soon(|| thread_running("wal-test-stop")));
        checkpointer.stop();
        assert!(soon(|| !thread_running("wal-test-stop")));
        checkpointer.stop();
        // Commits after stop() are counted without waking anything.
        for _ in 0..EVERY.get() {
            insert(&conn);
            checkpointer.committed();
        }

        let dropped = Checkpointer::start(&path, EVERY, "wal-test-drop").unwrap();
        assert!(soon(|| thread_running("wal-test-drop")));
        drop(dropped);
        assert!(soon(|| !thread_running("wal-test-drop")));
    }
}
