//! Owner-side admission of invite joiners (docs/client.md, "Invites and joins").
//!
//! For every channel this client owns, one task long-polls the API for pending join requests (the API answers
//! as soon as one arrives), checks each key package, rejects the unusable ones and adds all the others in ONE
//! commit, then hands their joiners the one Welcome. The Welcome is saved in the data_dir before it is posted
//! and deleted once the API took it, so an API outage or a restart between the commit and the post never
//! strands a joiner who is already in the group; every round first delivers such leftovers, before polling, so
//! a joiner is never added twice. Failures are logged and retried with backoff (the API may be restarting);
//! the task ends when the client closes or the channel is left or lost.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mls_rs::MlsMessage;
use tokio::time::sleep;

use crate::api::{ApiClient, ApiFailure, PendingJoin, LONG_POLL_WAIT};
use crate::error::Error;
use crate::identity::CIPHER_SUITE;
use crate::mls::parse_key_package;
use crate::state::{ChannelState, Lifecycle};

const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Starts the admission task of `state`'s channel unless it is already running.
pub(crate) fn ensure_running(state: &Arc<ChannelState>, api: &Arc<ApiClient>) -> Result<(), Error> {
    let newly_started = state
        .ctx
        .admissions
        .lock()
        .map_err(|_| Error::Runtime("admission table lock poisoned".into()))?
        .insert(state.name.to_string());
    if newly_started {
        tokio::spawn(run(state.clone(), api.clone()));
    }
    Ok(())
}

async fn run(state: Arc<ChannelState>, api: Arc<ApiClient>) {
    let mut closed = state.ctx.closed.subscribe();
    let mut backoff = INITIAL_BACKOFF;
    while !*closed.borrow_and_update() && state.lifecycle() == Lifecycle::Active {
        let outcome = tokio::select! {
            outcome = admit_round(&state, &api) => outcome,
            _ = closed.changed() => break,
        };
        match outcome {
            Ok(()) => backoff = INITIAL_BACKOFF,
            Err(e) => {
                tracing::warn!(channel = %state.name, error = %e, ?backoff, "admitting joiners failed; retrying");
                tokio::select! {
                    _ = sleep(backoff) => {}
                    _ = closed.changed() => break,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    if let Ok(mut admissions) = state.ctx.admissions.lock() {
        admissions.remove(state.name.as_str());
    }
}

/// One round: deliver leftover Welcomes, wait for pending joins, settle all of them.
async fn admit_round(state: &ChannelState, api: &ApiClient) -> Result<(), Error> {
    deliver_saved_welcomes(state, api).await?;
    let joins = api.pending_joins(state.name.as_str(), LONG_POLL_WAIT).await?;
    if joins.is_empty() {
        return Ok(());
    }
    let mut usable = Vec::new();
    let mut refused = Vec::new();
    for join in joins {
        match check(&join) {
            Ok(key_package) => usable.push((join.join_id, key_package)),
            Err(reason) => {
                tracing::warn!(channel = %state.name, join_id = %join.join_id, %reason, "rejecting join request");
                refused.push(join.join_id);
            }
        }
    }
    if !refused.is_empty() {
        api.reject_joins(state.name.as_str(), &refused).await?;
    }
    admit(state, api, usable).await
}

/// Adds `joiners` in one commit. If mls-rs refuses the batch, one of the key packages is bad in a way only MLS
/// validation sees: each joiner is then tried alone, so only the bad ones are rejected.
async fn admit(state: &ChannelState, api: &ApiClient, joiners: Vec<(String, MlsMessage)>) -> Result<(), Error> {
    if joiners.is_empty() {
        return Ok(());
    }
    let key_packages: Vec<MlsMessage> = joiners.iter().map(|(_, kp)| kp.clone()).collect();
    match state.add_members(&key_packages).await {
        Ok(welcome) => {
            let join_ids: Vec<String> = joiners.into_iter().map(|(id, _)| id).collect();
            let saved = state.ctx.store.save_pending_welcome(state.name.as_str(), &join_ids, &welcome)?;
            post_welcome(state, api, saved, &join_ids, &welcome).await
        }
        Err(Error::Mls(reason)) if joiners.len() > 1 => {
            tracing::warn!(channel = %state.name, %reason, "batch add refused; adding joiners one by one");
            for joiner in joiners {
                Box::pin(admit(state, api, vec![joiner])).await?;
            }
            Ok(())
        }
        Err(Error::Mls(reason)) => {
            let join_ids: Vec<String> = joiners.into_iter().map(|(id, _)| id).collect();
            tracing::warn!(channel = %state.name, ?join_ids, %reason, "rejecting join request: MLS refused its key package");
            api.reject_joins(state.name.as_str(), &join_ids).await.map_err(Error::from)
        }
        Err(e) => Err(e),
    }
}

async fn deliver_saved_welcomes(state: &ChannelState, api: &ApiClient) -> Result<(), Error> {
    for saved in state.ctx.store.pending_welcomes(state.name.as_str())? {
        post_welcome(state, api, saved.id, &saved.join_ids, &saved.welcome).await?;
    }
    Ok(())
}

/// Posts a saved Welcome and forgets it once the API has it. "Not found / not pending" means an earlier post
/// got through (its answer was lost), so the Welcome is delivered either way.
async fn post_welcome(
    state: &ChannelState,
    api: &ApiClient,
    saved: i64,
    join_ids: &[String],
    welcome: &[u8],
) -> Result<(), Error> {
    match api.welcome_joins(state.name.as_str(), join_ids, welcome).await {
        Ok(()) => {}
        Err(ApiFailure::Refused { code, .. }) if code == "join_not_pending" || code == "join_not_found" => {
            tracing::info!(channel = %state.name, ?join_ids, %code, "Welcome was already settled");
        }
        Err(e) => return Err(e.into()),
    }
    state.ctx.store.delete_pending_welcome(saved)
}

/// Why a join request cannot be admitted, or its key package.
fn check(join: &PendingJoin) -> Result<MlsMessage, String> {
    let claimed = STANDARD.decode(&join.identity).map_err(|e| format!("identity is not base64: {e}"))?;
    let bytes = STANDARD.decode(&join.key_package).map_err(|e| format!("key package is not base64: {e}"))?;
    let message = parse_key_package(&bytes).map_err(|e| e.to_string())?;
    let key_package = message.as_key_package().ok_or("not a key package")?;
    if key_package.cipher_suite() != CIPHER_SUITE {
        return Err(format!(
            "key package uses ciphersuite {:?}, the channel uses {CIPHER_SUITE:?}",
            key_package.cipher_suite()
        ));
    }
    let credential = key_package.signing_identity().credential.as_basic().map(|c| c.identifier.as_slice());
    if credential != Some(claimed.as_slice()) {
        return Err("the identity in the request does not match the key package's credential".into());
    }
    Ok(message)
}
