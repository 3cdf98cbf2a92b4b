//! The log writer's side of membership: every followed channel's MLS group as of the log's head, so that each
//! message is checked against exactly the group that the messages stored before it made.
//!
//! A group is loaded from the store on first use and cached. A batch stages the groups its handshakes change
//! and writes their new state and roster spans in the batch's own transaction; the cache takes the staged
//! groups only once that transaction commits, so a failed batch leaves no trace in memory either.

use std::collections::HashMap;

use rusqlite::Connection;

use super::store;
use crate::admission::Submission;
use crate::append::AppendError;
use crate::membership::{MemberKey, ObservedGroup, Observer, RosterChange};
use crate::stored::StoreError;

/// Groups kept in memory beyond those of the current batch. Evicted ones are reloaded from the store when
/// their channel is next written, so this bounds memory without bounding the number of channels.
const MAX_CACHED_GROUPS: usize = 4096;

/// The groups a batch changed, by channel id.
pub type StagedGroups = HashMap<i64, ObservedGroup>;

/// Every followed channel's group, as of the last committed batch.
pub struct TrackedGroups {
    observer: Observer,
    cache: HashMap<i64, ObservedGroup>,
}

impl TrackedGroups {
    pub fn new() -> Self {
        Self { observer: Observer::default(), cache: HashMap::new() }
    }

    /// Checks the first message of a channel (see [`Submission::create`]). Returns the new group.
    pub fn create(&self, message: &Submission<'_>) -> Result<ObservedGroup, AppendError> {
        message.create(&self.observer)
    }

    /// Checks a message for an existing channel against its group. `Some` is the group after a handshake, with
    /// the roster change, to be recorded with [`stage`] once the message is stored.
    pub fn check(
        &mut self,
        conn: &Connection,
        staged: &StagedGroups,
        channel_id: i64,
        message: &Submission<'_>,
    ) -> Result<Result<Option<(ObservedGroup, RosterChange)>, AppendError>, StoreError> {
        let Some(group) = self.current(conn, staged, channel_id)? else {
            return Ok(Err(AppendError::Untracked(message.channel.clone())));
        };
        Ok(message.check(group))
    }

    /// The group of `channel_id` as of the batch so far: staged by it, cached, or loaded from the store.
    /// `None` for a channel that is not followed.
    fn current<'g>(
        &'g mut self,
        conn: &Connection,
        staged: &'g StagedGroups,
        channel_id: i64,
    ) -> Result<Option<&'g ObservedGroup>, StoreError> {
        if let Some(group) = staged.get(&channel_id) {
            return Ok(Some(group));
        }
        if !self.cache.contains_key(&channel_id) {
            let Some(snapshot) = store::load_group(conn, channel_id)? else {
                return Ok(None);
            };
            let group = self.observer.load(&snapshot).map_err(|e| StoreError::CorruptGroup(e.to_string()))?;
            self.make_room();
            self.cache.insert(channel_id, group);
        }
        Ok(self.cache.get(&channel_id))
    }

    fn make_room(&mut self) {
        while self.cache.len() >= MAX_CACHED_GROUPS {
            let Some(&evicted) = self.cache.keys().next() else { break };
            self.cache.remove(&evicted);
        }
    }

    /// Takes the groups of a committed batch.
    pub fn install(&mut self, staged: StagedGroups) {
        for (channel_id, group) in staged {
            if !self.cache.contains_key(&channel_id) {
                self.make_room();
            }
            self.cache.insert(channel_id, group);
        }
    }
}

/// Records a channel's group after an accepted handshake (or its creation) in the batch's transaction: the
/// members added and removed as of `epoch`, and the group's new state.
pub fn stage(
    conn: &Connection,
    staged: &mut StagedGroups,
    channel_id: i64,
    epoch: u64,
    group: ObservedGroup,
    change: &RosterChange,
) -> Result<(), StoreError> {
    store::add_members(conn, channel_id, epoch, change.added.iter().map(MemberKey::as_bytes))?;
    store::remove_members(conn, channel_id, epoch, change.removed.iter().map(MemberKey::as_bytes))?;
    let snapshot = group.snapshot().map_err(|e| StoreError::CorruptGroup(e.to_string()))?;
    store::save_group(conn, channel_id, &snapshot)?;
    staged.insert(channel_id, group);
    Ok(())
}
