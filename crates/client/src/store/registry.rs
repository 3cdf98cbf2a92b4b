//! The channel registry: one row per channel the client holds, with the position its stored group state has
//! reached.

use rusqlite::{params, Transaction};

use super::{execute_cached, sql, to_i64, to_u64, Store};
use crate::error::Error;

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

impl Store {
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
}

/// Inserts or replaces `record`'s registry row, inside the caller's transaction.
pub(super) fn write_record(tx: &Transaction<'_>, record: &ChannelRecord) -> Result<(), Error> {
    execute_cached(
        tx,
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
    Ok(())
}
