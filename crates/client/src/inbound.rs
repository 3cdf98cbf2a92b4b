//! The inbound worker of a channel: applies what the relay delivers, in sequence order, to the MLS group.
//!
//! Deliveries are taken in batches; a batch is processed under the channel's core lock and ends with ONE store
//! transaction holding the new group state, the new last-applied sequence and the inbox rows it produced. A
//! crash therefore either keeps the whole batch or none of it, and the resubscription after restart starts right
//! after the last applied message: nothing is lost, nothing is applied twice.
//!
//! If that transaction fails (disk full, database locked), the failure is reported on the channel's `recv` and
//! the batch's inbox rows are kept in memory and written, with the group state, by the next successful attempt;
//! the worker retries on its own with backoff, so a quiet channel does not keep them in memory forever.

use std::sync::Arc;
use std::time::Duration;

use mls_rs::error::MlsError;
use mls_rs::group::{CommitEffect, CommitMessageDescription, ReceivedMessage};
use mls_rs::{MlsMessage, WireFormat};
use tokio::sync::mpsc;

use crate::error::Error;
use crate::frames::Delivery;
use crate::mls::{apply_own_commit, identity_at, mls_err, MlsGroup};
use crate::operations::is_designated_committer;
use crate::state::{ChannelState, Lifecycle};
use crate::store::{ChannelStatus, InboxItem};
use crate::transport::{ChannelEvent, Route};

/// Deliveries queued per channel before the stream is slowed down.
const EVENT_QUEUE: usize = 1024;
/// Most deliveries applied in one store transaction.
const BATCH: usize = 64;
const FIRST_STORE_RETRY: Duration = Duration::from_millis(200);
const MAX_STORE_RETRY: Duration = Duration::from_secs(5);

/// Starts the inbound worker of `state`'s channel and subscribes the channel from its resume point. With
/// `wait_for_ack`, returns the relay's current epoch for the channel (`None`: the relay has no message for it yet).
pub(crate) async fn start(state: &Arc<ChannelState>, wait_for_ack: bool) -> Result<Option<u64>, Error> {
    let (events, queue) = mpsc::channel(EVENT_QUEUE);
    tokio::spawn(run(state.clone(), queue));
    let progress = state.progress.subscribe();
    let route = Route { events, resume_from: Box::new(move || progress.borrow().resume_point()) };
    let start = state.progress.borrow().resume_point();
    state.ctx.relay.subscribe(&state.name, start, route, wait_for_ack).await
}

/// Runs until the channel's route is dropped (leave, removal, client close).
async fn run(state: Arc<ChannelState>, mut events: mpsc::Receiver<ChannelEvent>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut store_retry: Option<Duration> = None;
    loop {
        let open = match store_retry {
            None => events.recv_many(&mut batch, BATCH).await > 0,
            // Unsaved work is pending: write it with the next deliveries, or on its own after a pause.
            Some(pause) => tokio::select! {
                received = events.recv_many(&mut batch, BATCH) => received > 0,
                _ = tokio::time::sleep(pause) => true,
            },
        };
        if !open {
            return;
        }
        match apply(&state, batch.drain(..)).await {
            Ok(()) => store_retry = None,
            Err(e) => {
                tracing::error!(channel = %state.name, error = %e, "cannot store delivered messages; retrying");
                state.report_failure(format!("cannot store delivered messages of channel {}: {e}", state.name));
                store_retry = Some(store_retry.map_or(FIRST_STORE_RETRY, |pause| (pause * 2).min(MAX_STORE_RETRY)));
            }
        }
    }
}

/// What one delivered MLS message did to the group.
enum Effect {
    Deliver(InboxItem),
    /// Group state changed (commit, proposal) or the message was our own echo: nothing for the app.
    Internal,
    /// A commit removed this member.
    Removed,
}

async fn apply(state: &Arc<ChannelState>, events: impl Iterator<Item = ChannelEvent>) -> Result<(), Error> {
    let mut core = state.core.lock().await;
    if state.lifecycle() != Lifecycle::Active {
        return Ok(());
    }
    // Rows of an earlier batch whose transaction failed come first: they precede this batch in channel order.
    let mut inbox = std::mem::take(&mut core.unsaved);
    for event in events {
        if core.record.status == ChannelStatus::Removed {
            break;
        }
        match event {
            ChannelEvent::SubscriptionRefused(refusal) => inbox.push(InboxItem::ChannelFailure {
                reason: format!(
                    "relay refused to deliver channel {} ({}): {}",
                    state.name, refusal.code, refusal.message
                ),
            }),
            ChannelEvent::Delivery(delivery) => {
                // After a reconnect the relay resends from the persisted position; skip what is already applied.
                if delivery.seq <= core.record.applied_seq {
                    continue;
                }
                core.record.applied_seq = delivery.seq;
                let core = &mut *core;
                let effect = match apply_own_commit(&mut core.group, &mut core.own_commit, &delivery.blob) {
                    Some(applied) => commit_effect(applied, delivery.seq),
                    None => process(&mut core.group, &delivery),
                };
                match effect {
                    Effect::Deliver(item) => inbox.push(item),
                    Effect::Internal => {}
                    Effect::Removed => core.record.status = ChannelStatus::Removed,
                }
            }
        }
    }
    let saved = core
        .group
        .write_to_storage()
        .map_err(mls_err("cannot save group state"))
        .and_then(|()| state.ctx.store.persist(&core.record, &inbox));
    if let Err(e) = saved {
        core.unsaved = inbox;
        return Err(e);
    }
    let removed = core.record.status == ChannelStatus::Removed;
    let lifecycle = if removed { Lifecycle::Removed } else { Lifecycle::Active };
    let must_commit_proposals = !removed && is_designated_committer(&core.group);
    state.progress.send_replace(core.progress(lifecycle));
    drop(core);
    if removed {
        state.ctx.relay.unsubscribe(&state.name).await;
    } else if must_commit_proposals {
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = state.commit_pending_proposals().await {
                tracing::warn!(channel = %state.name, error = %e, "could not commit pending proposals");
            }
        });
    }
    Ok(())
}

fn process(group: &mut MlsGroup, delivery: &Delivery) -> Effect {
    let seq = delivery.seq;
    let failure = |reason: String| Effect::Deliver(InboxItem::MlsFailure { seq, reason });
    let message = match read_message(delivery, group.group_id()) {
        Ok(message) => message,
        Err(reason) => return failure(reason),
    };
    if message.wire_format() == WireFormat::GroupInfo {
        // The channel's creation record, which the relay follows the group from: nothing for a member.
        return Effect::Internal;
    }
    let epoch = message.epoch().unwrap_or_else(|| group.current_epoch());
    match group.process_incoming_message(message) {
        Ok(ReceivedMessage::ApplicationMessage(app)) => Effect::Deliver(InboxItem::Message {
            payload: app.data().to_vec(),
            sender: identity_at(group, app.sender_index),
            seq,
            epoch,
            stored_at_ms: delivery.stored_at_ms,
        }),
        Ok(ReceivedMessage::Commit(commit)) => match commit.effect {
            CommitEffect::Removed { .. } => Effect::Removed,
            _ => Effect::Internal,
        },
        Ok(_) => Effect::Internal,
        // The relay echoes our own messages; their effect is already in our state (or, for a commit, applied
        // through the pending commit above).
        Err(MlsError::CantProcessMessageFromSelf) => Effect::Internal,
        Err(e) => failure(format!("cannot process message seq {seq}: {e}")),
    }
}

/// Decodes a delivered MLS message and checks that it is for the channel's group (`group_id`); otherwise says
/// why not, for the inbox.
pub(crate) fn read_message(delivery: &Delivery, group_id: &[u8]) -> Result<MlsMessage, String> {
    let seq = delivery.seq;
    let message =
        MlsMessage::from_bytes(&delivery.blob).map_err(|e| format!("message seq {seq} is not an MLS message: {e}"))?;
    if message.group_id().is_some_and(|id| id != group_id) {
        return Err(format!(
            "message seq {seq} belongs to another MLS group: the channel at the relay is not the group this client joined"
        ));
    }
    Ok(message)
}

/// What applying this member's own commit (at `seq`) did: never a removal of itself, but the same failure
/// reporting as any other message.
fn commit_effect(applied: Result<CommitMessageDescription, MlsError>, seq: u64) -> Effect {
    match applied {
        Ok(_) => Effect::Internal,
        Err(e) => {
            Effect::Deliver(InboxItem::MlsFailure { seq, reason: format!("cannot apply own commit seq {seq}: {e}") })
        }
    }
}
