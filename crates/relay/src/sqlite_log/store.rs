//! The durable message log: one SQLite database (WAL) under the relay's data directory.
//!
//! Only the log writer thread ([`crate::log`]) modifies it, through one connection, so sequence numbers and epochs
//! are decided in one place; readers (subscription catch-up) use their own connections from a [`ReadPool`], which
//! WAL lets run alongside the writer. The schema is described in `docs/relay.md`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::config::SyncMode;
use crate::stored::{EpochSpan, Expiry, Membership, ReadLimit, StoreError, StoredMessage};

/// File name of the log database inside the data directory.
pub const DB_FILE: &str = "relay.sqlite3";

/// How long a connection waits for a lock held by another one before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS channels (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    group_id      BLOB    NOT NULL,
    epoch         INTEGER NOT NULL,
    next_seq      INTEGER NOT NULL,
    low_seq       INTEGER NOT NULL DEFAULT 1,
    expired_epoch INTEGER
);
CREATE TABLE IF NOT EXISTS messages (
    channel_id   INTEGER NOT NULL REFERENCES channels(id),
    seq          INTEGER NOT NULL,
    msg_id       TEXT    NOT NULL,
    epoch        INTEGER NOT NULL,
    stored_at_ms INTEGER NOT NULL,
    frame        BLOB    NOT NULL,
    PRIMARY KEY (channel_id, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_msg_id ON messages(channel_id, msg_id);
CREATE INDEX IF NOT EXISTS messages_by_epoch ON messages(channel_id, epoch);
CREATE INDEX IF NOT EXISTS messages_by_age ON messages(stored_at_ms);
CREATE TABLE IF NOT EXISTS channel_groups (
    channel_id INTEGER PRIMARY KEY REFERENCES channels(id),
    snapshot   BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS channel_creators (
    channel_id INTEGER PRIMARY KEY REFERENCES channels(id),
    account    TEXT    NOT NULL,
    org        TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS channel_creators_by_account ON channel_creators(account);
CREATE INDEX IF NOT EXISTS channel_creators_by_org ON channel_creators(org);
CREATE TABLE IF NOT EXISTS channel_members (
    channel_id  INTEGER NOT NULL REFERENCES channels(id),
    member_key  BLOB    NOT NULL,
    from_epoch  INTEGER NOT NULL,
    until_epoch INTEGER,
    PRIMARY KEY (channel_id, member_key, from_epoch)
);
";

/// A channel's row: what the sequencer needs to continue where it stopped.
#[derive(Clone, Debug)]
pub struct ChannelRow {
    pub id: i64,
    pub name: String,
    pub group_id: Vec<u8>,
    /// Current epoch: the epoch every next message must carry.
    pub epoch: u64,
    /// Sequence number the next accepted message gets.
    pub next_seq: u64,
    /// Oldest sequence number not yet removed by retention.
    pub low_seq: u64,
    /// Epoch of the newest message removed by retention, if any was.
    pub expired_epoch: Option<u64>,
}

/// A sequence number or epoch as an SQLite integer. Every one the relay stores is below 2^63 (it refuses larger
/// epochs before storing, and seqs count up from 1), so those round-trip unchanged. Larger ones only come from the
/// wire, as lower bounds of a read (`skytale-from-seq`, `skytale-from-epoch`); they become `i64::MAX`, which no
/// stored value reaches, so "at least that" selects nothing, exactly as it should. Never a cast: 2^63 must not
/// wrap to a negative bound that selects the whole log.
fn sql(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unsql(v: i64) -> u64 {
    v as u64
}

/// Opens the writer's connection and creates the schema if needed.
pub fn open_writer(path: &Path, sync: SyncMode) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let synchronous = match sync {
        SyncMode::Normal => "NORMAL",
        SyncMode::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    // Checkpoints run on their own thread (`skytale_sqlite_wal::Checkpointer`), never inside a batch's commit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

pub fn load_channels(conn: &Connection) -> Result<Vec<ChannelRow>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT id, name, group_id, epoch, next_seq, low_seq, expired_epoch FROM channels ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok(ChannelRow {
            id: r.get(0)?,
            name: r.get(1)?,
            group_id: r.get(2)?,
            epoch: unsql(r.get(3)?),
            next_seq: unsql(r.get(4)?),
            low_seq: unsql(r.get(5)?),
            expired_epoch: r.get::<_, Option<i64>>(6)?.map(unsql),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Creates a channel bound to `group_id` at `epoch`; returns its id.
pub fn insert_channel(conn: &Connection, name: &str, group_id: &[u8], epoch: u64) -> Result<i64, StoreError> {
    conn.prepare_cached("INSERT INTO channels (name, group_id, epoch, next_seq) VALUES (?1, ?2, ?3, 1)")?
        .execute(params![name, group_id, sql(epoch)])?;
    Ok(conn.last_insert_rowid())
}

pub fn update_channel_head(conn: &Connection, id: i64, epoch: u64, next_seq: u64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE channels SET epoch = ?2, next_seq = ?3 WHERE id = ?1")?.execute(params![
        id,
        sql(epoch),
        sql(next_seq)
    ])?;
    Ok(())
}

/// The sequence number already given to `msg_id` on this channel, if it is stored.
pub fn seq_of_msg_id(conn: &Connection, channel_id: i64, msg_id: &str) -> Result<Option<u64>, StoreError> {
    let seq = conn
        .prepare_cached("SELECT seq FROM messages WHERE channel_id = ?1 AND msg_id = ?2")?
        .query_row(params![channel_id, msg_id], |r| r.get::<_, i64>(0))
        .optional()?;
    Ok(seq.map(unsql))
}

/// Stores `message` unless `msg_id` is already stored for this channel; returns whether it was stored.
/// (The conflict check is the unique index's own lookup, so a new message costs no extra query.)
pub fn insert_message(
    conn: &Connection,
    channel_id: i64,
    msg_id: &str,
    message: &StoredMessage,
) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO messages (channel_id, seq, msg_id, epoch, stored_at_ms, frame) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (channel_id, msg_id) DO NOTHING",
        )?
        .execute(params![
            channel_id,
            sql(message.seq),
            msg_id,
            sql(message.epoch),
            message.stored_at_ms,
            message.frame()
        ])?;
    Ok(inserted == 1)
}

/// Records who created a channel (auth on), for the channel quota.
pub fn record_creator(conn: &Connection, channel_id: i64, account: &str, org: &str) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO channel_creators (channel_id, account, org) VALUES (?1, ?2, ?3)")?
        .execute(params![channel_id, account, org])?;
    Ok(())
}

/// How many channels `account`, and all accounts of `org`, have created.
pub fn channels_created(conn: &Connection, account: &str, org: &str) -> Result<(u64, u64), StoreError> {
    let count = |sql: &str, key: &str| -> Result<u64, StoreError> {
        Ok(unsql(conn.prepare_cached(sql)?.query_row([key], |r| r.get::<_, i64>(0))?))
    };
    Ok((
        count("SELECT COUNT(*) FROM channel_creators WHERE account = ?1", account)?,
        count("SELECT COUNT(*) FROM channel_creators WHERE org = ?1", org)?,
    ))
}

/// Saves the observed MLS group of a channel (`membership`), replacing the previous state.
pub fn save_group(conn: &Connection, channel_id: i64, snapshot: &[u8]) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT OR REPLACE INTO channel_groups (channel_id, snapshot) VALUES (?1, ?2)")?
        .execute(params![channel_id, snapshot])?;
    Ok(())
}

/// The observed MLS group of a channel, `None` for a channel the relay does not follow (created with auth off).
pub fn load_group(conn: &Connection, channel_id: i64) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT snapshot FROM channel_groups WHERE channel_id = ?1")?
        .query_row([channel_id], |r| r.get(0))
        .optional()?)
}

/// Records that the holders of `keys` are members from `epoch` on.
pub fn add_members<'k>(
    conn: &Connection,
    channel_id: i64,
    epoch: u64,
    keys: impl IntoIterator<Item = &'k [u8]>,
) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO channel_members (channel_id, member_key, from_epoch) VALUES (?1, ?2, ?3)",
    )?;
    for key in keys {
        insert.execute(params![channel_id, key, sql(epoch)])?;
    }
    Ok(())
}

/// Records that the holders of `keys` are no longer members from `epoch` on.
pub fn remove_members<'k>(
    conn: &Connection,
    channel_id: i64,
    epoch: u64,
    keys: impl IntoIterator<Item = &'k [u8]>,
) -> Result<(), StoreError> {
    let mut close = conn.prepare_cached(
        "UPDATE channel_members SET until_epoch = ?3
         WHERE channel_id = ?1 AND member_key = ?2 AND until_epoch IS NULL",
    )?;
    for key in keys {
        close.execute(params![channel_id, key, sql(epoch)])?;
    }
    Ok(())
}

/// Removes, per channel, every message stored before `cutoff_ms` and, when `max_bytes` is set, the oldest
/// messages beyond that many bytes of frames. Always removes a prefix of each channel's log (even if the clock
/// went backwards), so the retained part stays contiguous, and records where it now starts.
pub fn expire(conn: &Connection, cutoff_ms: i64, max_bytes: Option<u64>) -> Result<Vec<Expiry>, StoreError> {
    let mut through: std::collections::BTreeMap<i64, i64> = Default::default();
    {
        let mut by_age =
            conn.prepare("SELECT channel_id, MAX(seq) FROM messages WHERE stored_at_ms < ?1 GROUP BY channel_id")?;
        for row in by_age.query_map([cutoff_ms], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))? {
            let (channel, seq) = row?;
            through.insert(channel, seq);
        }
    }
    if let Some(max_bytes) = max_bytes {
        let mut by_size = conn.prepare(
            "SELECT channel_id, MAX(seq) FROM (
                 SELECT channel_id, seq,
                        SUM(length(frame)) OVER (PARTITION BY channel_id ORDER BY seq DESC) AS newer_bytes
                 FROM messages)
             WHERE newer_bytes > ?1 GROUP BY channel_id",
        )?;
        let limit = i64::try_from(max_bytes).unwrap_or(i64::MAX);
        for row in by_size.query_map([limit], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))? {
            let (channel, seq) = row?;
            let entry = through.entry(channel).or_insert(seq);
            *entry = (*entry).max(seq);
        }
    }

    let mut expiries = Vec::with_capacity(through.len());
    for (channel_id, seq) in through {
        let epoch: i64 = conn.query_row(
            "SELECT epoch FROM messages WHERE channel_id = ?1 AND seq = ?2",
            params![channel_id, seq],
            |r| r.get(0),
        )?;
        let removed =
            conn.execute("DELETE FROM messages WHERE channel_id = ?1 AND seq <= ?2", params![channel_id, seq])?;
        let name: String = conn.query_row(
            "UPDATE channels SET low_seq = ?2 + 1, expired_epoch = ?3 WHERE id = ?1 RETURNING name",
            params![channel_id, seq, epoch],
            |r| r.get(0),
        )?;
        let removed = u64::try_from(removed).unwrap_or(u64::MAX);
        expiries.push(Expiry { channel: name, through_seq: unsql(seq), through_epoch: unsql(epoch), removed });
    }
    Ok(expiries)
}

/// Whether the log at `path` answers a new reader: opens it read-only (never creating it) and reads the channel
/// table. A fresh connection, not a pooled one, so that a log file removed or replaced under the running relay is
/// noticed; the pool's connections would go on reading the old file.
pub fn probe(path: &Path) -> Result<(), StoreError> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.query_row("SELECT count(*) FROM (SELECT 1 FROM channels LIMIT 1)", [], |_| Ok(()))?;
    Ok(())
}

/// Read-only connections for subscription catch-up, reused across reads. Each read runs on a blocking thread;
/// a pool lets several subscriptions catch up at once while the writer keeps appending.
pub struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    pub fn new(path: PathBuf) -> Self {
        Self { path, idle: Mutex::new(Vec::new()) }
    }

    /// Runs `read` with this pool on a blocking thread, so that SQLite never holds up the async runtime.
    pub async fn read<R, F>(self: &Arc<Self>, read: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&ReadPool) -> Result<R, StoreError> + Send + 'static,
    {
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || read(&pool)).await.map_err(|e| StoreError::ReadAborted(e.to_string()))?
    }

    fn with_connection<R>(&self, f: impl FnOnce(&Connection) -> Result<R, StoreError>) -> Result<R, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = Connection::open(&self.path)?;
                conn.busy_timeout(BUSY_TIMEOUT)?;
                conn.pragma_update(None, "query_only", true)?;
                conn
            }
        };
        let result = f(&conn);
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(conn);
        result
    }

    /// Messages of `channel` from `from_seq` on, in order, within `limit` (at least one if any exists).
    pub fn read_from(&self, channel: &str, from_seq: u64, limit: ReadLimit) -> Result<Vec<StoredMessage>, StoreError> {
        self.with_connection(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT m.seq, m.epoch, m.stored_at_ms, m.msg_id, m.frame FROM messages m JOIN channels c ON c.id = m.channel_id
                 WHERE c.name = ?1 AND m.seq >= ?2 ORDER BY m.seq LIMIT ?3",
            )?;
            let max_messages = i64::try_from(limit.max_messages).unwrap_or(i64::MAX);
            let mut rows = stmt.query(params![channel, sql(from_seq), max_messages])?;
            let mut out = Vec::new();
            let mut bytes = 0usize;
            while let Some(row) = rows.next()? {
                let frame = row.get_ref(4)?.as_blob().map_err(rusqlite::Error::from)?;
                bytes += frame.len();
                let msg_id = row.get_ref(3)?.as_str().map_err(rusqlite::Error::from)?;
                out.push(StoredMessage::new(unsql(row.get(0)?), unsql(row.get(1)?), row.get(2)?, msg_id, frame));
                if bytes >= limit.max_bytes {
                    break;
                }
            }
            Ok(out)
        })
    }

    /// What the relay knows of `member`'s place in `channel` (see [`Membership`]).
    pub fn membership(&self, channel: &str, member: &[u8]) -> Result<Membership, StoreError> {
        self.with_connection(|conn| {
            let channel = conn
                .prepare_cached(
                    "SELECT c.id, g.channel_id IS NOT NULL FROM channels c
                     LEFT JOIN channel_groups g ON g.channel_id = c.id WHERE c.name = ?1",
                )?
                .query_row([channel], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, bool>(1)?)))
                .optional()?;
            let Some((channel_id, tracked)) = channel else {
                return Ok(Membership::NoChannel);
            };
            if !tracked {
                return Ok(Membership::Untracked);
            }
            let mut stmt = conn.prepare_cached(
                "SELECT from_epoch, until_epoch FROM channel_members WHERE channel_id = ?1 AND member_key = ?2
                 ORDER BY from_epoch",
            )?;
            let spans = stmt
                .query_map(params![channel_id, member], |r| {
                    Ok(EpochSpan { from: unsql(r.get(0)?), until: r.get::<_, Option<i64>>(1)?.map(unsql) })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Membership::Tracked(spans))
        })
    }

    /// Sequence number of the first stored message of `channel` whose epoch is at least `epoch`.
    pub fn first_seq_from_epoch(&self, channel: &str, epoch: u64) -> Result<Option<u64>, StoreError> {
        self.with_connection(|conn| {
            let seq = conn
                .prepare_cached(
                    "SELECT MIN(m.seq) FROM messages m JOIN channels c ON c.id = m.channel_id
                     WHERE c.name = ?1 AND m.epoch >= ?2",
                )?
                .query_row(params![channel, sql(epoch)], |r| r.get::<_, Option<i64>>(0))?;
            Ok(seq.map(unsql))
        })
    }
}
