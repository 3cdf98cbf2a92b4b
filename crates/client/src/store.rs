//! The durable half of the client: channel registry, MLS group state and inbox in one SQLite file
//! (`data_dir/state.db`).
//!
//! mls-rs asks its [`GroupStateStorage`] to persist a group whenever `write_to_storage` is called. Writing that
//! immediately would leave a window where the group has moved on but the registry still has the old "last
//! applied sequence" (a crash there replays or skips messages). So [`GroupStore::write`] only *stages* the
//! snapshot in memory, and [`Store::persist`] writes the staged snapshot, the channel's registry row and the
//! inbox rows produced by the same batch in ONE transaction. Reads consult the staged snapshot first, so mls-rs
//! always sees its latest state.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use mls_rs_core::group::{EpochRecord, GroupState, GroupStateStorage};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use skytale_sqlite_wal::{Checkpointer, StartError};
use zeroize::Zeroizing;

use crate::error::Error;

/// How many prior epochs of a group are kept (mls-rs uses them to decrypt late messages of an old epoch; the
/// relay's epoch rule makes those rare, so a small window suffices).
const PRIOR_EPOCHS_KEPT: u64 = 3;

/// Commits between two WAL checkpoints (run on their own thread, see `skytale_sqlite_wal`): a snapshot-sized
/// commit writes a few pages, so the WAL stays in the low MB.
const COMMITS_PER_CHECKPOINT: NonZeroU64 = NonZeroU64::new(256).unwrap();

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS channel (
    name        TEXT PRIMARY KEY,
    group_id    BLOB NOT NULL UNIQUE,
    applied_seq INTEGER NOT NULL,
    join_epoch  INTEGER NOT NULL,
    status      TEXT NOT NULL,
    owner       INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS group_state (
    group_id BLOB PRIMARY KEY,
    snapshot BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS group_epoch (
    group_id BLOB NOT NULL,
    epoch_id INTEGER NOT NULL,
    data     BLOB NOT NULL,
    PRIMARY KEY (group_id, epoch_id)
);
CREATE TABLE IF NOT EXISTS inbox (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    kind    TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    epoch   INTEGER NOT NULL,
    sender  BLOB NOT NULL,
    body    BLOB NOT NULL,
    stored_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS inbox_by_channel ON inbox (channel, id);
CREATE TABLE IF NOT EXISTS pending_welcome (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    channel  TEXT NOT NULL,
    join_ids TEXT NOT NULL,
    welcome  BLOB NOT NULL
);
";

/// Columns added after the first release, for data_dirs created before them: (table, column, definition).
const ADDED_COLUMNS: &[(&str, &str, &str)] =
    &[("channel", "owner", "INTEGER NOT NULL DEFAULT 0"), ("inbox", "stored_at_ms", "INTEGER")];

/// Whether the client still takes part in a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChannelStatus {
    Active,
    /// A processed commit removed this member; kept so `recv` can say so after a restart.
    Removed,
}

impl ChannelStatus {
    fn as_str(self) -> &'static str {
        match self {
            ChannelStatus::Active => "active",
            ChannelStatus::Removed => "removed",
        }
    }

    fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "active" => Ok(ChannelStatus::Active),
            "removed" => Ok(ChannelStatus::Removed),
            other => Err(Error::storage(format!("unknown channel status {other:?}"))),
        }
    }
}

/// One row of the channel registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChannelRecord {
    pub name: String,
    pub group_id: Vec<u8>,
    /// Highest relay sequence number whose effect is in the stored group state (0: none yet).
    pub applied_seq: u64,
    /// Epoch at which this client entered the group (where to resume when nothing was applied yet).
    pub join_epoch: u64,
    pub status: ChannelStatus,
    /// This client admits invite joiners to the channel (it created the channel or issued an invite for it).
    pub owner: bool,
}

/// A Welcome for invite joiners whose commit is applied but which the API has not accepted yet: kept until it
/// is delivered, so a restart or an API outage cannot strand the joiners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PendingWelcome {
    pub id: i64,
    pub join_ids: Vec<String>,
    pub welcome: Vec<u8>,
}

/// Something `recv` hands to the application, in channel order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum InboxItem {
    Message {
        payload: Vec<u8>,
        sender: Vec<u8>,
        seq: u64,
        epoch: u64,
        /// When the relay stored it (ms since the Unix epoch), if it said.
        stored_at_ms: Option<u64>,
    },
    /// A message at `seq` that could not be processed: reported, never skipped silently.
    MlsFailure { seq: u64, reason: String },
    /// The relay refused to deliver this channel (e.g. retention expired).
    ChannelFailure { reason: String },
}

impl InboxItem {
    /// The channel seq the item stands at, if it stands at one.
    fn seq(&self) -> Option<u64> {
        match self {
            InboxItem::Message { seq, .. } | InboxItem::MlsFailure { seq, .. } => Some(*seq),
            InboxItem::ChannelFailure { .. } => None,
        }
    }
}

struct StagedWrite {
    state: Zeroizing<Vec<u8>>,
    epochs: Vec<EpochRecord>,
}

/// The SQLite store. Shared by every channel of one client.
pub(crate) struct Store {
    conn: Mutex<Connection>,
    staged: Mutex<HashMap<Vec<u8>, StagedWrite>>,
    checkpointer: Checkpointer,
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
        conn.execute_batch(SCHEMA).map_err(sql)?;
        add_missing_columns(&conn)?;
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

    /// Every channel in the registry, by name.
    pub fn channels(&self) -> Result<Vec<ChannelRecord>, Error> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare("SELECT name, group_id, applied_seq, join_epoch, status, owner FROM channel ORDER BY name")
            .map_err(sql)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, bool>(5)?,
                ))
            })
            .map_err(sql)?;
        let mut out = Vec::new();
        for row in rows {
            let (name, group_id, applied, join, status, owner) = row.map_err(sql)?;
            out.push(ChannelRecord {
                name,
                group_id,
                applied_seq: to_u64(applied)?,
                join_epoch: to_u64(join)?,
                status: ChannelStatus::parse(&status)?,
                owner,
            });
        }
        Ok(out)
    }

    /// Writes the staged group state of `record.group_id`, the registry row and `inbox` atomically.
    pub fn persist(&self, record: &ChannelRecord, inbox: &[InboxItem]) -> Result<(), Error> {
        let staged = self.staged()?.remove(&record.group_id);
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(sql)?;
        if let Some(write) = &staged {
            write_group(&tx, &record.group_id, write)?;
        }
        execute_cached(
            &tx,
            "INSERT INTO channel (name, group_id, applied_seq, join_epoch, status, owner) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(name) DO UPDATE SET group_id = excluded.group_id, applied_seq = excluded.applied_seq,
             join_epoch = excluded.join_epoch, status = excluded.status, owner = excluded.owner",
            params![
                record.name,
                record.group_id,
                to_i64(record.applied_seq)?,
                to_i64(record.join_epoch)?,
                record.status.as_str(),
                record.owner
            ],
        )
        .map_err(sql)?;
        for item in inbox {
            insert_inbox(&tx, &record.name, item)?;
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

    /// Removes the oldest undelivered inbox items of `channel`, at most `max`, in ONE transaction and returns
    /// them in order (each item is handed out once). Messages are taken together; a failure row is taken alone,
    /// so the caller reports it at its position.
    ///
    /// `mark_taken` gets the seq of the newest item taken while the store is still locked, so a reader of
    /// [`newest_inbox_seq`](Self::newest_inbox_seq) and that mark (`delivered_seq`) never sees the rows gone
    /// without the mark moved: it would undercount, and `receive()` would return before the last message.
    pub fn take_inbox(&self, channel: &str, max: usize, mark_taken: impl FnOnce(u64)) -> Result<Vec<InboxItem>, Error> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(sql)?;
        let mut taken = Vec::new();
        let mut last_id = None;
        {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, kind, seq, epoch, sender, body, stored_at_ms FROM inbox WHERE channel = ?1 ORDER BY id LIMIT ?2",
                )
                .map_err(sql)?;
            let mut rows = stmt.query(params![channel, to_i64(max as u64)?]).map_err(sql)?;
            while let Some(row) = rows.next().map_err(sql)? {
                let item = inbox_item(
                    row.get(1).map_err(sql)?,
                    row.get(2).map_err(sql)?,
                    row.get(3).map_err(sql)?,
                    row.get(4).map_err(sql)?,
                    row.get(5).map_err(sql)?,
                    row.get(6).map_err(sql)?,
                )?;
                let is_message = matches!(item, InboxItem::Message { .. });
                if !is_message && !taken.is_empty() {
                    break;
                }
                last_id = Some(row.get::<_, i64>(0).map_err(sql)?);
                taken.push(item);
                if !is_message {
                    break;
                }
            }
        }
        let Some(last_id) = last_id else { return Ok(taken) };
        // The taken rows are exactly this channel's rows up to `last_id`: they were the oldest, in id order.
        tx.execute("DELETE FROM inbox WHERE channel = ?1 AND id <= ?2", params![channel, last_id]).map_err(sql)?;
        tx.commit().map_err(sql)?;
        if let Some(seq) = taken.iter().filter_map(InboxItem::seq).max() {
            mark_taken(seq);
        }
        drop(conn);
        self.checkpointer.committed();
        Ok(taken)
    }

    /// Sequence number of the newest message (or undecryptable message) waiting in `channel`'s inbox, if any.
    pub fn newest_inbox_seq(&self, channel: &str) -> Result<Option<u64>, Error> {
        let conn = self.conn()?;
        let newest: Option<i64> = conn
            .query_row("SELECT MAX(seq) FROM inbox WHERE channel = ?1 AND kind != 'channel_failure'", [channel], |r| {
                r.get(0)
            })
            .map_err(sql)?;
        newest.map(to_u64).transpose()
    }

    /// Forgets a channel entirely (after `leave`): registry row, inbox, group state.
    pub fn delete_channel(&self, name: &str, group_id: &[u8]) -> Result<(), Error> {
        self.staged()?.remove(group_id);
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(sql)?;
        tx.execute("DELETE FROM channel WHERE name = ?1", [name]).map_err(sql)?;
        tx.execute("DELETE FROM inbox WHERE channel = ?1", [name]).map_err(sql)?;
        tx.execute("DELETE FROM pending_welcome WHERE channel = ?1", [name]).map_err(sql)?;
        tx.execute("DELETE FROM group_state WHERE group_id = ?1", [group_id]).map_err(sql)?;
        tx.execute("DELETE FROM group_epoch WHERE group_id = ?1", [group_id]).map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Keeps a Welcome until the API has accepted it (see [`PendingWelcome`]).
    pub fn save_pending_welcome(&self, channel: &str, join_ids: &[String], welcome: &[u8]) -> Result<i64, Error> {
        let ids = serde_json::to_string(join_ids).map_err(Error::storage)?;
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO pending_welcome (channel, join_ids, welcome) VALUES (?1, ?2, ?3)",
            params![channel, ids, welcome],
        )
        .map_err(sql)?;
        Ok(conn.last_insert_rowid())
    }

    /// Welcomes of `channel` not yet accepted by the API, oldest first.
    pub fn pending_welcomes(&self, channel: &str) -> Result<Vec<PendingWelcome>, Error> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare("SELECT id, join_ids, welcome FROM pending_welcome WHERE channel = ?1 ORDER BY id")
            .map_err(sql)?;
        let rows = stmt
            .query_map([channel], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?)))
            .map_err(sql)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, ids, welcome) = row.map_err(sql)?;
            let join_ids = serde_json::from_str(&ids).map_err(Error::storage)?;
            out.push(PendingWelcome { id, join_ids, welcome });
        }
        Ok(out)
    }

    /// Forgets a Welcome the API accepted.
    pub fn delete_pending_welcome(&self, id: i64) -> Result<(), Error> {
        self.conn()?.execute("DELETE FROM pending_welcome WHERE id = ?1", [id]).map_err(sql).map(drop)
    }

    fn stored_state(&self, group_id: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        if let Some(write) = self.staged()?.get(group_id) {
            return Ok(Some(write.state.clone()));
        }
        let conn = self.conn()?;
        let state = conn
            .query_row("SELECT snapshot FROM group_state WHERE group_id = ?1", [group_id], |r| r.get::<_, Vec<u8>>(0))
            .optional()
            .map_err(sql)?;
        Ok(state.map(Zeroizing::new))
    }

    fn stored_epoch(&self, group_id: &[u8], epoch_id: u64) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        if let Some(write) = self.staged()?.get(group_id) {
            if let Some(e) = write.epochs.iter().rev().find(|e| e.id == epoch_id) {
                return Ok(Some(e.data.clone()));
            }
        }
        let conn = self.conn()?;
        let data = conn
            .query_row(
                "SELECT data FROM group_epoch WHERE group_id = ?1 AND epoch_id = ?2",
                params![group_id, to_i64(epoch_id)?],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .optional()
            .map_err(sql)?;
        Ok(data.map(Zeroizing::new))
    }

    fn max_stored_epoch(&self, group_id: &[u8]) -> Result<Option<u64>, Error> {
        let staged_max = self.staged()?.get(group_id).and_then(|w| w.epochs.iter().map(|e| e.id).max());
        let conn = self.conn()?;
        let stored: Option<i64> = conn
            .query_row("SELECT MAX(epoch_id) FROM group_epoch WHERE group_id = ?1", [group_id], |r| r.get(0))
            .map_err(sql)?;
        let stored = stored.map(to_u64).transpose()?;
        Ok(staged_max.max(stored))
    }

    fn stage(&self, state: GroupState, inserts: Vec<EpochRecord>, updates: Vec<EpochRecord>) -> Result<(), Error> {
        let mut staged = self.staged()?;
        let write = staged
            .entry(state.id.clone())
            .or_insert_with(|| StagedWrite { state: Zeroizing::new(Vec::new()), epochs: Vec::new() });
        write.state = state.data;
        // Later records for the same epoch replace earlier ones (an update after an insert).
        for record in inserts.into_iter().chain(updates) {
            write.epochs.retain(|e| e.id != record.id);
            write.epochs.push(record);
        }
        Ok(())
    }
}

/// Brings a `state.db` written by an older client up to the current schema.
fn add_missing_columns(conn: &Connection) -> Result<(), Error> {
    for (table, column, definition) in ADDED_COLUMNS {
        let mut stmt =
            conn.prepare(&format!("SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1")).map_err(sql)?;
        if !stmt.exists([column]).map_err(sql)? {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {definition}")).map_err(sql)?;
        }
    }
    Ok(())
}

/// Runs a write through the connection's statement cache (these run once or more per message: parsing them each
/// time was a visible share of CPU time).
fn execute_cached(tx: &Transaction<'_>, statement: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    tx.prepare_cached(statement)?.execute(params)
}

fn write_group(tx: &Transaction<'_>, group_id: &[u8], write: &StagedWrite) -> Result<(), Error> {
    execute_cached(
        tx,
        "INSERT INTO group_state (group_id, snapshot) VALUES (?1, ?2)
         ON CONFLICT(group_id) DO UPDATE SET snapshot = excluded.snapshot",
        params![group_id, &write.state[..]],
    )
    .map_err(sql)?;
    for epoch in &write.epochs {
        execute_cached(
            tx,
            "INSERT INTO group_epoch (group_id, epoch_id, data) VALUES (?1, ?2, ?3)
             ON CONFLICT(group_id, epoch_id) DO UPDATE SET data = excluded.data",
            params![group_id, to_i64(epoch.id)?, &epoch.data[..]],
        )
        .map_err(sql)?;
    }
    if let Some(newest) = write.epochs.iter().map(|e| e.id).max() {
        if newest >= PRIOR_EPOCHS_KEPT {
            execute_cached(
                tx,
                "DELETE FROM group_epoch WHERE group_id = ?1 AND epoch_id <= ?2",
                params![group_id, to_i64(newest - PRIOR_EPOCHS_KEPT)?],
            )
            .map_err(sql)?;
        }
    }
    Ok(())
}

fn inbox_item(
    kind: String,
    seq: i64,
    epoch: i64,
    sender: Vec<u8>,
    body: Vec<u8>,
    stored_at_ms: Option<i64>,
) -> Result<InboxItem, Error> {
    let (seq, epoch, stored_at_ms) = (to_u64(seq)?, to_u64(epoch)?, stored_at_ms.map(to_u64).transpose()?);
    let text = || String::from_utf8_lossy(&body).into_owned();
    Ok(match kind.as_str() {
        "message" => InboxItem::Message { payload: body.clone(), sender, seq, epoch, stored_at_ms },
        "mls_failure" => InboxItem::MlsFailure { seq, reason: text() },
        "channel_failure" => InboxItem::ChannelFailure { reason: text() },
        other => return Err(Error::storage(format!("unknown inbox kind {other:?}"))),
    })
}

fn insert_inbox(tx: &Transaction<'_>, channel: &str, item: &InboxItem) -> Result<(), Error> {
    let (kind, seq, epoch, sender, body, stored_at_ms): (&str, u64, u64, &[u8], Vec<u8>, Option<u64>) = match item {
        InboxItem::Message { payload, sender, seq, epoch, stored_at_ms } => {
            ("message", *seq, *epoch, sender, payload.clone(), *stored_at_ms)
        }
        InboxItem::MlsFailure { seq, reason } => ("mls_failure", *seq, 0, &[], reason.clone().into_bytes(), None),
        InboxItem::ChannelFailure { reason } => ("channel_failure", 0, 0, &[], reason.clone().into_bytes(), None),
    };
    execute_cached(
        tx,
        "INSERT INTO inbox (channel, kind, seq, epoch, sender, body, stored_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![channel, kind, to_i64(seq)?, to_i64(epoch)?, sender, body, stored_at_ms.map(to_i64).transpose()?],
    )
    .map_err(sql)?;
    Ok(())
}

impl mls_rs_core::error::IntoAnyError for Error {
    fn into_dyn_error(self) -> Result<Box<dyn std::error::Error + Send + Sync>, Self> {
        Ok(self.into())
    }
}

/// The [`GroupStateStorage`] handed to mls-rs: reads through to the store, stages writes (see module docs).
#[derive(Clone)]
pub(crate) struct GroupStore(pub Arc<Store>);

impl GroupStateStorage for GroupStore {
    type Error = Error;

    fn state(&self, group_id: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        self.0.stored_state(group_id)
    }

    fn epoch(&self, group_id: &[u8], epoch_id: u64) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        self.0.stored_epoch(group_id, epoch_id)
    }

    fn write(
        &mut self,
        state: GroupState,
        epoch_inserts: Vec<EpochRecord>,
        epoch_updates: Vec<EpochRecord>,
    ) -> Result<(), Error> {
        self.0.stage(state, epoch_inserts, epoch_updates)
    }

    fn max_epoch_id(&self, group_id: &[u8]) -> Result<Option<u64>, Error> {
        self.0.max_stored_epoch(group_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, applied: u64) -> ChannelRecord {
        ChannelRecord {
            name: name.into(),
            group_id: b"g1".to_vec(),
            applied_seq: applied,
            join_epoch: 2,
            status: ChannelStatus::Active,
            owner: true,
        }
    }

    fn message(seq: u64) -> InboxItem {
        InboxItem::Message {
            payload: format!("m{seq}").into_bytes(),
            sender: b"bob".to_vec(),
            seq,
            epoch: 3,
            stored_at_ms: Some(1_700_000_000_000 + seq),
        }
    }

    #[test]
    fn staged_state_is_visible_but_written_only_with_the_registry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = Store::open(&path).unwrap();
        let mut groups = GroupStore(store.clone());
        groups
            .write(
                GroupState { id: b"g1".to_vec(), data: Zeroizing::new(b"snap-1".to_vec()) },
                vec![EpochRecord::new(1, Zeroizing::new(b"e1".to_vec()))],
                vec![],
            )
            .unwrap();
        assert_eq!(groups.state(b"g1").unwrap().unwrap().as_slice(), b"snap-1");
        assert_eq!(groups.max_epoch_id(b"g1").unwrap(), Some(1));

        // Not persisted yet: a fresh store (a crash) sees nothing.
        let reopened = Store::open(&path).unwrap();
        assert_eq!(GroupStore(reopened).state(b"g1").unwrap(), None);

        store.persist(&record("a/b/c", 7), &[message(7)]).unwrap();
        let reopened = Store::open(&path).unwrap();
        let groups = GroupStore(reopened.clone());
        assert_eq!(groups.state(b"g1").unwrap().unwrap().as_slice(), b"snap-1");
        assert_eq!(groups.epoch(b"g1", 1).unwrap().unwrap().as_slice(), b"e1");
        assert_eq!(reopened.channels().unwrap(), vec![record("a/b/c", 7)]);
    }

    #[test]
    fn pending_welcomes_are_kept_until_deleted_and_forgotten_with_the_channel() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = Store::open(&path).unwrap();
        let ids = vec!["j1".to_owned(), "j2".to_owned()];
        let first = store.save_pending_welcome("a/b/c", &ids, b"w1").unwrap();
        store.save_pending_welcome("a/b/c", &ids[..1], b"w2").unwrap();
        store.save_pending_welcome("x/y/z", &ids, b"w3").unwrap();
        let reopened = Store::open(&path).unwrap();
        let pending = reopened.pending_welcomes("a/b/c").unwrap();
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[0], PendingWelcome { id: first, join_ids: ids.clone(), welcome: b"w1".to_vec() });
        reopened.delete_pending_welcome(first).unwrap();
        assert_eq!(reopened.pending_welcomes("a/b/c").unwrap().len(), 1);
        reopened.delete_channel("a/b/c", b"g1").unwrap();
        assert!(reopened.pending_welcomes("a/b/c").unwrap().is_empty());
        assert_eq!(reopened.pending_welcomes("x/y/z").unwrap().len(), 1);
    }

    #[test]
    fn a_registry_without_the_owner_column_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE channel (name TEXT PRIMARY KEY, group_id BLOB NOT NULL UNIQUE, applied_seq INTEGER NOT NULL,
             join_epoch INTEGER NOT NULL, status TEXT NOT NULL);
             INSERT INTO channel VALUES ('a/b/c', x'6731', 4, 1, 'active');",
        )
        .unwrap();
        drop(old);
        let store = Store::open(&path).unwrap();
        let expected = ChannelRecord { applied_seq: 4, join_epoch: 1, owner: false, ..record("a/b/c", 0) };
        assert_eq!(store.channels().unwrap(), vec![expected]);
    }

    #[test]
    fn inbox_is_handed_out_in_order_and_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let failure = InboxItem::MlsFailure { seq: 6, reason: "bad mac".into() };
        store.persist(&record("a/b/c", 6), &[message(5), failure.clone()]).unwrap();
        store.persist(&record("a/b/c", 7), &[message(7)]).unwrap();
        assert_eq!(store.take_inbox("a/b/c", 1, |_| {}).unwrap(), vec![message(5)]);
        assert_eq!(store.take_inbox("a/b/c", 1, |_| {}).unwrap(), vec![failure]);
        assert_eq!(store.take_inbox("a/b/c", 1, |_| {}).unwrap(), vec![message(7)]);
        assert_eq!(store.take_inbox("a/b/c", 1, |_| {}).unwrap(), vec![]);
        assert_eq!(store.take_inbox("x/y/z", 1, |_| {}).unwrap(), vec![]);
    }

    #[test]
    fn a_batch_take_stops_at_a_failure_which_is_taken_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let failure = InboxItem::MlsFailure { seq: 7, reason: "bad mac".into() };
        store.persist(&record("a/b/c", 9), &[message(5), message(6), failure.clone(), message(8), message(9)]).unwrap();
        store.persist(&ChannelRecord { group_id: b"g2".to_vec(), ..record("x/y/z", 1) }, &[message(1)]).unwrap();
        assert_eq!(store.take_inbox("a/b/c", 10, |_| {}).unwrap(), vec![message(5), message(6)]);
        assert_eq!(store.take_inbox("a/b/c", 10, |_| {}).unwrap(), vec![failure]);
        assert_eq!(store.take_inbox("a/b/c", 1, |_| {}).unwrap(), vec![message(8)]);
        assert_eq!(store.take_inbox("a/b/c", 10, |_| {}).unwrap(), vec![message(9)]);
        assert_eq!(store.take_inbox("a/b/c", 10, |_| {}).unwrap(), vec![]);
        assert_eq!(store.take_inbox("x/y/z", 10, |_| {}).unwrap(), vec![message(1)]);
    }

    #[test]
    fn old_epochs_are_pruned_and_delete_forgets_everything() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let mut groups = GroupStore(store.clone());
        for epoch in 1..=6 {
            groups
                .write(
                    GroupState { id: b"g1".to_vec(), data: Zeroizing::new(vec![epoch as u8]) },
                    vec![EpochRecord::new(epoch, Zeroizing::new(vec![epoch as u8]))],
                    vec![],
                )
                .unwrap();
            store.persist(&record("a/b/c", epoch), &[]).unwrap();
        }
        assert_eq!(groups.epoch(b"g1", 2).unwrap(), None);
        assert!(groups.epoch(b"g1", 6).unwrap().is_some());
        store.persist(&record("a/b/c", 7), &[message(7)]).unwrap();
        store.delete_channel("a/b/c", b"g1").unwrap();
        assert!(store.channels().unwrap().is_empty());
        assert_eq!(groups.state(b"g1").unwrap(), None);
        assert_eq!(store.take_inbox("a/b/c", 1, |_| {}).unwrap(), vec![]);
    }
}
