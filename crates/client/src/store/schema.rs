//! The tables of `state.db`, and the upgrade of a file written by an older client.

use rusqlite::Connection;

use super::sql;
use crate::error::Error;

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

/// Creates the tables that do not exist yet and adds the columns an older client's tables lack.
pub(super) fn create_or_upgrade(conn: &Connection) -> Result<(), Error> {
    conn.execute_batch(SCHEMA).map_err(sql)?;
    add_missing_columns(conn)
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
