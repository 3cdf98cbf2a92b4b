//! MLS group state: the [`GroupStateStorage`] handed to mls-rs, which stages each snapshot in memory until
//! [`Store::persist`] writes it together with the registry and the inbox (see the `store` module docs).

use std::sync::Arc;

use mls_rs_core::group::{EpochRecord, GroupState, GroupStateStorage};
use rusqlite::{params, OptionalExtension, Transaction};
use zeroize::Zeroizing;

use super::{execute_cached, sql, to_i64, to_u64, Store};
use crate::error::Error;

/// How many prior epochs of a group are kept (mls-rs uses them to decrypt late messages of an old epoch; the
/// relay's epoch rule makes those rare, so a small window suffices).
const PRIOR_EPOCHS_KEPT: u64 = 3;

/// A group's snapshot and epoch records written by mls-rs but not yet persisted.
pub(super) struct StagedWrite {
    state: Zeroizing<Vec<u8>>,
    epochs: Vec<EpochRecord>,
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

impl mls_rs_core::error::IntoAnyError for Error {
    fn into_dyn_error(self) -> Result<Box<dyn std::error::Error + Send + Sync>, Self> {
        Ok(self.into())
    }
}

impl Store {
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

/// Writes a staged snapshot and its epoch records, inside the caller's transaction, and prunes the epochs older
/// than [`PRIOR_EPOCHS_KEPT`].
pub(super) fn write_group(tx: &Transaction<'_>, group_id: &[u8], write: &StagedWrite) -> Result<(), Error> {
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
