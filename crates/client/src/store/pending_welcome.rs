//! Welcomes for invite joiners, kept from the commit that added them until the API has accepted them.

use rusqlite::params;

use super::{sql, Store};
use crate::error::Error;

/// A Welcome for invite joiners whose commit is applied but which the API has not accepted yet: kept until it
/// is delivered, so a restart or an API outage cannot strand the joiners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PendingWelcome {
    pub id: i64,
    pub join_ids: Vec<String>,
    pub welcome: Vec<u8>,
}

impl Store {
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
}
