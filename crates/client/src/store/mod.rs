//! The durable half of the client: channel registry, MLS group state and inbox in one SQLite file
//! (`data_dir/state.db`).
//!
//! mls-rs asks its [`GroupStateStorage`](mls_rs_core::group::GroupStateStorage) to persist a group whenever
//! `write_to_storage` is called. Writing that immediately would leave a window where the group has moved on but
//! the registry still has the old "last applied sequence" (a crash there replays or skips messages). So
//! [`GroupStore`]'s `write` only *stages* the snapshot in memory, and [`Store::persist`] writes the staged
//! snapshot, the channel's registry row and the inbox rows produced by the same batch in ONE transaction. Reads
//! consult the staged snapshot first, so mls-rs always sees its latest state.
//!
//! One file per table group: [`schema`] (tables and upgrades), [`registry`] (channels), [`inbox`],
//! [`group_state`] (the mls-rs storage) and [`pending_welcome`].

mod group_state;
mod inbox;
mod pending_welcome;
mod registry;
mod schema;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, Transaction};
use skytale_sqlite_wal::{Checkpointer, StartError};

use crate::error::Error;
use group_state::StagedWrite;

pub(crate) use group_state::GroupStore;
pub(crate) use inbox::InboxItem;
pub(crate) use registry::{ChannelRecord, ChannelStatus};

/// Commits between two WAL checkpoints (run on their own thread, see `skytale_sqlite_wal`): a snapshot-sized
/// commit writes a few pages, so the WAL stays in the low MB.
const COMMITS_PER_CHECKPOINT: NonZeroU64 = NonZeroU64::new(256).unwrap();

/// The SQLite store. Shared by every channel of one client.
pub(crate) struct Store {
    conn: Mutex<Connection>,
    /// Group snapshots mls-rs wrote since their last [`Store::persist`], by group id.
    staged: Mutex<HashMap<Vec<u8>, StagedWrite>>,
    checkpointer: Checkpointer,
}

impl Store {
    pub fn open(path: &Path) -> Result<Arc<Self>, Error> {
        let conn = Connection::open(path).map_err(sql)?;
        // WAL: a committed transaction survives SIGKILL; readers never block the writer. `synchronous=NORMAL`
        // skips the fsync per transaction (it halved one-way latency): a power loss may roll the store back by the
        // last few transactions, consistently (state, registry and inbox move together). See docs/client.md.
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql)?;
        // Checkpoints (and their fsyncs) run on a background thread instead; see `skytale_sqlite_wal`.
        conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(sql)?;
        schema::create_or_upgrade(&conn)?;
        let checkpointer =
            Checkpointer::start(path, COMMITS_PER_CHECKPOINT, "skytale-checkpoint").map_err(|e| match e {
                StartError::Open(e) => Error::storage(e),
                StartError::Thread(e) => Error::Runtime(format!("cannot start the checkpoint thread: {e}")),
            })?;
        Ok(Arc::new(Self { conn: Mutex::new(conn), staged: Mutex::new(HashMap::new()), checkpointer }))
    }

    /// Stops the background checkpoint thread (the client is closing).
    pub fn stop_checkpoints(&self) {
        self.checkpointer.stop();
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, Error> {
        self.conn.lock().map_err(|_| Error::storage("store lock poisoned"))
    }

    fn staged(&self) -> Result<MutexGuard<'_, HashMap<Vec<u8>, StagedWrite>>, Error> {
        self.staged.lock().map_err(|_| Error::storage("staging lock poisoned"))
    }

    /// Writes the staged group state of `record.group_id`, the registry row and `inbox` atomically.
    pub fn persist(&self, record: &ChannelRecord, inbox: &[InboxItem]) -> Result<(), Error> {
        let staged = self.staged()?.remove(&record.group_id);
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(sql)?;
        if let Some(write) = &staged {
            group_state::write_group(&tx, &record.group_id, write)?;
        }
        registry::write_record(&tx, record)?;
        for item in inbox {
            inbox::insert_inbox(&tx, &record.name, item)?;
        }
        match tx.commit() {
            Ok(()) => {
                self.checkpointer.committed();
                Ok(())
            }
            Err(e) => {
                // Keep the snapshot staged so the next persist of this group still writes it.
                if let Some(write) = staged {
                    self.staged()?.entry(record.group_id.clone()).or_insert(write);
                }
                Err(sql(e))
            }
        }
    }
}

fn sql(e: rusqlite::Error) -> Error {
    Error::storage(e)
}

fn to_i64(v: u64) -> Result<i64, Error> {
    i64::try_from(v).map_err(|_| Error::storage(format!("value {v} does not fit in SQLite")))
}

fn to_u64(v: i64) -> Result<u64, Error> {
    u64::try_from(v).map_err(|_| Error::storage(format!("negative value {v} in the store")))
}

/// Runs a write through the connection's statement cache (these run once or more per message: parsing them each
/// time was a visible share of CPU time).
fn execute_cached(tx: &Transaction<'_>, statement: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    tx.prepare_cached(statement)?.execute(params)
}
