//! Channel operations that publish MLS messages: commits (add, remove, rotate, pending proposals), application
//! messages and the leave proposal.
//!
//! The relay accepts exactly one commit per epoch and refuses every message of an older epoch with
//! `stale_epoch`. A commit is therefore built (kept by mls-rs as the group's pending commit and saved, so a crash
//! after the relay stored it can still apply its echo), published, and applied when the stream delivers it back
//! in channel order; if another member's commit won the epoch, the operation waits until the stream has applied
//! that winner (which also discards our pending commit) and rebuilds against the new epoch, a bounded number of
//! times. Application messages refused as stale are re-encrypted at the new epoch and resent under the same
//! msg-id.

use std::collections::HashSet;
use std::sync::Arc;

use mls_rs::group::proposal::Proposal;
use mls_rs::group::CommitOutput;
use mls_rs::MlsMessage;
use skytale_proto::meta::error_code;

use crate::error::Error;
use crate::frames::PayloadKind;
use crate::message_size;
use crate::mls::{mls_err, MlsGroup};
use crate::state::{ChannelState, ChannelTable, Lifecycle};
use crate::transport::{refusal_error, BatchOutcome, PublishOutcome};

/// How many times an operation is rebuilt after losing an epoch race before giving up.
const MAX_ATTEMPTS: usize = 8;

impl ChannelState {
    /// Runs a commit built by `build` through the relay, retrying on stale epoch.
    pub async fn commit(
        &self,
        build: impl FnMut(&mut MlsGroup) -> Result<CommitOutput, Error>,
    ) -> Result<CommitOutput, Error> {
        let _serialised = self.ops.lock().await;
        self.commit_serialised(build).await
    }

    /// [`commit`](Self::commit) for callers that already hold `ops`.
    async fn commit_serialised(
        &self,
        mut build: impl FnMut(&mut MlsGroup) -> Result<CommitOutput, Error>,
    ) -> Result<CommitOutput, Error> {
        for _ in 0..MAX_ATTEMPTS {
            let (output, blob, built_epoch) = {
                let mut core = self.core.lock().await;
                self.ensure_active()?;
                let output = build(&mut core.group)?;
                let blob = output.commit_message.to_bytes().map_err(mls_err("cannot encode commit"))?;
                let limit = self.ctx.relay.max_payload();
                if blob.len() > limit {
                    // Never sent, so it must not stay pending: the next commit starts from the same epoch.
                    core.group.clear_pending_commit();
                    return Err(Error::Channel(format!(
                        "the commit is {} bytes, over the relay limit of {limit} bytes; commit fewer changes at once \
                         (add fewer members per call)",
                        blob.len()
                    )));
                }
                core.own_commit = Some(blob.clone());
                core.save(&self.ctx)?;
                let epoch = core.group.current_epoch();
                (output, blob, epoch)
            };
            let msg_id = self.ctx.relay.new_msg_id();
            match self.ctx.relay.publish(&self.name, PayloadKind::Commit, blob, &msg_id).await? {
                PublishOutcome::Stored(seq) => {
                    self.wait_for("its own commit", |p| p.applied_seq >= seq).await?;
                    return Ok(output);
                }
                PublishOutcome::Refused(r) if r.is_stale_epoch() => {
                    self.wait_for("the winning commit", |p| p.epoch > built_epoch).await?;
                }
                PublishOutcome::Refused(r) => {
                    // Definitively refused: the pending commit will never be echoed.
                    let mut core = self.core.lock().await;
                    core.group.clear_pending_commit();
                    core.own_commit = None;
                    return Err(refusal_error(&r));
                }
            }
        }
        Err(Error::Channel(format!("gave up on channel {} after losing {MAX_ATTEMPTS} epoch races", self.name)))
    }

    /// Creates the channel at the relay with this group's GroupInfo (carrying the ratchet tree): the relay follows
    /// the group from it and checks every later handshake against it. Returns once the echo is applied; fails with
    /// "channel already exists on the relay" when another group holds the name.
    pub async fn announce(&self) -> Result<(), Error> {
        let blob = {
            let core = self.core.lock().await;
            let info = core.group.group_info_message(true).map_err(mls_err("cannot build the GroupInfo"))?;
            info.to_bytes().map_err(mls_err("cannot encode the GroupInfo"))?
        };
        let msg_id = self.ctx.relay.new_msg_id();
        match self.ctx.relay.publish(&self.name, PayloadKind::GroupInfo, blob, &msg_id).await? {
            PublishOutcome::Stored(seq) => self.wait_for("its creation", |p| p.applied_seq >= seq).await,
            PublishOutcome::Refused(r) if r.code == error_code::CHANNEL_EXISTS => {
                Err(Error::Channel(format!("channel already exists on the relay: {}", self.name)))
            }
            PublishOutcome::Refused(r) => Err(refusal_error(&r)),
        }
    }

    /// Adds the owners of `key_packages` (MLSMessage key packages) in ONE commit and returns the one Welcome that
    /// all of them join with. Returns once the commit is applied.
    pub async fn add_members(&self, key_packages: &[MlsMessage]) -> Result<Vec<u8>, Error> {
        if key_packages.is_empty() {
            return Err(Error::Channel("add_members needs at least one key package".into()));
        }
        let output = self
            .commit(|group| {
                let mut builder = group.commit_builder();
                for key_package in key_packages {
                    builder = builder.add_member(key_package.clone()).map_err(mls_err("invalid key package"))?;
                }
                builder.build().map_err(mls_err("invalid key package"))
            })
            .await?;
        let welcome = output.welcome_messages.first().ok_or_else(|| Error::Mls("commit produced no Welcome".into()))?;
        welcome.to_bytes().map_err(mls_err("cannot encode Welcome"))
    }

    /// Commits the cached proposals (e.g. a member's leave), unless someone else already did.
    pub async fn commit_pending_proposals(&self) -> Result<(), Error> {
        let _serialised = self.ops.lock().await;
        self.settle_proposals_serialised().await
    }

    async fn settle_proposals_serialised(&self) -> Result<(), Error> {
        let (required, leaving_myself, epoch) = {
            let core = self.core.lock().await;
            let me = core.group.current_member_index();
            (core.group.commit_required(), leaving_members(&core.group).contains(&me), core.group.current_epoch())
        };
        if !required {
            return Ok(());
        }
        if leaving_myself {
            // A member cannot commit its own removal; wait for another member's commit.
            return self.wait_for("the commit of pending proposals", |p| p.epoch > epoch).await;
        }
        self.commit_serialised(|group| group.commit(Vec::new()).map_err(mls_err("cannot commit pending proposals")))
            .await
            .map(drop)
    }

    /// Commits an update first if this member's unstored messages have used so many keys of its ratchet that the
    /// next message could land beyond what receivers derive (`ratchet_gap`).
    async fn update_keys_if_gap_too_wide(&self) -> Result<(), Error> {
        let wide = {
            let core = self.core.lock().await;
            core.gap.needs_update(core.group.current_epoch())
        };
        if wide {
            tracing::info!(channel = %self.name, "many messages in a row were not stored: updating keys before sending");
            self.commit(|group| group.commit(Vec::new()).map_err(mls_err("cannot update keys"))).await?;
        }
        Ok(())
    }

    /// Counts the keys of `epoch` that messages used, by whether the relay stored each (in encryption order): a
    /// stored message catches receivers up, a refused or unanswered one used its key for nothing.
    async fn count_keys(&self, epoch: u64, stored: impl IntoIterator<Item = bool>) {
        let mut core = self.core.lock().await;
        for stored in stored {
            if stored {
                core.gap.stored(epoch);
            } else {
                core.gap.unstored(epoch, 1);
            }
        }
    }

    /// Encrypts and publishes an application message; returns once the relay stored it. A payload whose MLS
    /// message would exceed the relay's limit is refused before it is encrypted (see `message_size`).
    pub async fn send(&self, payload: &[u8]) -> Result<(), Error> {
        let group_id = self.group_id_len().await;
        if let Some(oversize) = message_size::oversize(payload.len(), self.ctx.relay.max_payload(), group_id) {
            return Err(Error::Channel(format!("payload of {} bytes {oversize}", payload.len())));
        }
        let msg_id = self.ctx.relay.new_msg_id();
        for _ in 0..MAX_ATTEMPTS {
            self.update_keys_if_gap_too_wide().await?;
            let sealed = {
                let mut core = self.core.lock().await;
                self.ensure_active()?;
                if core.group.commit_required() {
                    None
                } else {
                    let message = core
                        .group
                        .encrypt_application_message(payload, Vec::new())
                        .map_err(mls_err("cannot encrypt"))?;
                    // The ratchet moved: persist before sending so a restart never reuses a message key.
                    core.save(&self.ctx)?;
                    Some((message, core.group.current_epoch()))
                }
            };
            let Some((message, epoch)) = sealed else {
                // MLS forbids application messages while proposals are pending: commit them first.
                self.commit_pending_proposals().await?;
                continue;
            };
            let blob = encode(&message)?;
            let published = self.ctx.relay.publish(&self.name, PayloadKind::Application, blob, &msg_id).await;
            self.count_keys(epoch, [matches!(published, Ok(PublishOutcome::Stored(_)))]).await;
            match published? {
                PublishOutcome::Stored(_) => return Ok(()),
                PublishOutcome::Refused(r) if r.is_stale_epoch() => {
                    self.wait_for("the new epoch", |p| p.epoch > epoch).await?;
                }
                PublishOutcome::Refused(r) if r.code == skytale_proto::meta::error_code::PAYLOAD_TOO_LARGE => {
                    // The relay's limit shrank since the check above (it restarted with another setting).
                    let advice = message_size::advice(self.ctx.relay.max_payload(), group_id);
                    return Err(Error::Channel(format!(
                        "payload of {} bytes is too large once encrypted: {}; {advice}",
                        payload.len(),
                        r.message
                    )));
                }
                PublishOutcome::Refused(r) => return Err(refusal_error(&r)),
            }
        }
        Err(Error::Channel(format!("gave up sending on channel {} after {MAX_ATTEMPTS} epoch changes", self.name)))
    }

    /// Encrypts `payloads` in one go (one state write for the batch), publishes them back to back and returns
    /// once the relay stored all of them, in order. A payload too large for the relay once encrypted fails the
    /// call before anything is encrypted or sent. Messages refused for a stale epoch (a commit landed mid-batch)
    /// are re-encrypted at the new epoch and resent with their msg-ids, like `send`; any other failure names how
    /// many of the batch the relay stored.
    pub async fn send_many(&self, payloads: &[Vec<u8>]) -> Result<(), Error> {
        let (limit, group_id) = (self.ctx.relay.max_payload(), self.group_id_len().await);
        for (index, payload) in payloads.iter().enumerate() {
            if let Some(oversize) = message_size::oversize(payload.len(), limit, group_id) {
                return Err(Error::Channel(format!(
                    "payload {index} of the batch ({} bytes) {oversize}; nothing was sent",
                    payload.len()
                )));
            }
        }
        let msg_ids: Vec<String> = payloads.iter().map(|_| self.ctx.relay.new_msg_id()).collect();
        let total = payloads.len();
        // Everything before `stored` is durably at the relay, in order.
        let mut stored = 0;
        let mut attempts = 0;
        while stored < total {
            attempts += 1;
            if attempts > MAX_ATTEMPTS {
                let error = Error::Channel(format!(
                    "gave up sending on channel {} after {MAX_ATTEMPTS} epoch changes",
                    self.name
                ));
                return Err(batch_error(error, stored, total));
            }
            self.update_keys_if_gap_too_wide().await.map_err(|e| batch_error(e, stored, total))?;
            let sealed = {
                let mut core = self.core.lock().await;
                self.ensure_active().map_err(|e| batch_error(e, stored, total))?;
                if core.group.commit_required() {
                    None
                } else {
                    let mut blobs = Vec::with_capacity(total - stored);
                    for payload in &payloads[stored..] {
                        let message = core
                            .group
                            .encrypt_application_message(payload, Vec::new())
                            .map_err(mls_err("cannot encrypt"));
                        blobs.push(message.and_then(|m| encode(&m)).map_err(|e| batch_error(e, stored, total))?);
                    }
                    // The ratchet moved: persist before sending so a restart never reuses a message key.
                    core.save(&self.ctx).map_err(|e| batch_error(e, stored, total))?;
                    Some((blobs, core.group.current_epoch()))
                }
            };
            let Some((blobs, epoch)) = sealed else {
                self.commit_pending_proposals().await.map_err(|e| batch_error(e, stored, total))?;
                continue;
            };
            let batch = msg_ids[stored..].iter().cloned().zip(blobs).collect();
            let BatchOutcome { outcomes, error } =
                self.ctx.relay.publish_batch(&self.name, PayloadKind::Application, batch).await;
            self.count_keys(epoch, outcomes.iter().map(|o| matches!(o, Some(PublishOutcome::Stored(_))))).await;
            let newly_stored = outcomes.iter().take_while(|o| matches!(o, Some(PublishOutcome::Stored(_)))).count();
            let rest = &outcomes[newly_stored..];
            stored += newly_stored;
            if let Some(error) = error {
                return Err(batch_error(error, stored, total));
            }
            match rest.first() {
                None => {}
                // A commit landed mid-batch: it refuses every later message of the old epoch, so re-encrypt them all.
                Some(Some(PublishOutcome::Refused(r))) if r.is_stale_epoch() && rest.iter().all(is_stale_refusal) => {
                    self.wait_for("the new epoch", |p| p.epoch > epoch)
                        .await
                        .map_err(|e| batch_error(e, stored, total))?;
                }
                Some(Some(PublishOutcome::Refused(r))) => return Err(batch_error(refusal_error(r), stored, total)),
                Some(_) => {
                    let error = Error::Channel("the relay stored the batch's messages out of order".into());
                    return Err(batch_error(error, stored, total));
                }
            }
        }
        Ok(())
    }

    /// Publishes a proposal removing this member, then forgets the channel locally (also in `channels`). The
    /// remaining members commit the removal.
    pub async fn leave(self: &Arc<Self>, channels: &ChannelTable) -> Result<(), Error> {
        let _serialised = self.ops.lock().await;
        for _ in 0..MAX_ATTEMPTS {
            let proposal = {
                let mut core = self.core.lock().await;
                self.ensure_active()?;
                if core.group.roster().members_iter().count() <= 1 {
                    None
                } else {
                    let me = core.group.current_member_index();
                    let proposal =
                        core.group.propose_remove(me, Vec::new()).map_err(mls_err("cannot propose own removal"))?;
                    Some((proposal, core.group.current_epoch()))
                }
            };
            let Some((proposal, epoch)) = proposal else { break };
            let msg_id = self.ctx.relay.new_msg_id();
            match self.ctx.relay.publish(&self.name, PayloadKind::Proposal, encode(&proposal)?, &msg_id).await? {
                PublishOutcome::Stored(_) => break,
                PublishOutcome::Refused(r) if r.is_stale_epoch() => {
                    self.wait_for("the new epoch", |p| p.epoch > epoch).await?;
                }
                PublishOutcome::Refused(r) => return Err(refusal_error(&r)),
            }
        }
        self.forget(channels).await
    }

    /// The length of the channel's MLS group id, which the size of its messages depends on.
    async fn group_id_len(&self) -> usize {
        self.core.lock().await.group.group_id().len()
    }

    async fn forget(&self, channels: &ChannelTable) -> Result<(), Error> {
        let core = self.core.lock().await;
        self.ctx.relay.unsubscribe(&self.name).await;
        self.ctx.store.delete_channel(self.name.as_str(), &core.record.group_id)?;
        channels.lock()?.remove(self.name.as_str());
        self.progress.send_modify(|p| p.lifecycle = Lifecycle::Left);
        Ok(())
    }
}

/// Pending proposals (a member leaving) are committed by exactly one member to avoid pointless races: the one
/// with the lowest leaf index among those staying. The relay's one-commit-per-epoch rule arbitrates anyway.
pub(crate) fn is_designated_committer(group: &MlsGroup) -> bool {
    if !group.commit_required() {
        return false;
    }
    let leaving = leaving_members(group);
    let me = group.current_member_index();
    !leaving.contains(&me)
        && group.roster().members_iter().map(|m| m.index).filter(|i| !leaving.contains(i)).min() == Some(me)
}

/// Leaf indexes that pending remove proposals take out of the group.
fn leaving_members(group: &MlsGroup) -> HashSet<u32> {
    group
        .get_cached_proposals()
        .iter()
        .filter_map(|p| match p.proposal() {
            Proposal::Remove(r) => Some(r.to_remove()),
            _ => None,
        })
        .collect()
}

fn is_stale_refusal(outcome: &Option<PublishOutcome>) -> bool {
    matches!(outcome, Some(PublishOutcome::Refused(r)) if r.is_stale_epoch())
}

/// `error`, telling how much of a `send_many` batch the relay had stored (the first `stored`, in order).
fn batch_error(error: Error, stored: usize, total: usize) -> Error {
    let progress = |message: String| {
        format!("{message} ({stored} of the batch's {total} messages were stored, the first ones in order)")
    };
    match error {
        Error::Channel(m) => Error::Channel(progress(m)),
        Error::Mls(m) => Error::Mls(progress(m)),
        Error::Transport(m) => Error::Transport(progress(m)),
        Error::Auth(m) => Error::Auth(progress(m)),
        Error::Quota(m) => Error::Quota(progress(m)),
        Error::Runtime(m) => Error::Runtime(progress(m)),
        Error::DataDir(m) => Error::DataDir(progress(m)),
        other @ Error::InvalidName(_) => other,
    }
}

fn encode(message: &MlsMessage) -> Result<Vec<u8>, Error> {
    message.to_bytes().map_err(mls_err("cannot encode message"))
}
