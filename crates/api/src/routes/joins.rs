//! The invite join flow. Joiner: `POST /v1/channels/join` then long-poll `GET /v1/channels/join/{id}` for the
//! Welcome. Member: long-poll `GET /v1/channels/joins` for pending requests, add them in one MLS commit, then
//! `POST /v1/channels/joins/welcome` with the Welcome (or `/reject`). Both waits return as soon as the other side
//! acts (see [`crate::signals`]), never on a timer.

use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use skytale_proto::ChannelName;

use super::parse_channel;
use crate::caller::Caller;
use crate::error::ApiError;
use crate::signals::Subject;
use crate::state::AppState;
use crate::storage::{JoinRequest, JoinStatus, PendingJoin};

/// Default long-poll wait, seconds: below common 30 s proxy idle timeouts.
const DEFAULT_WAIT_SECS: u64 = 25;
/// Longest long-poll wait accepted, seconds.
const MAX_WAIT_SECS: u64 = 60;

#[derive(Deserialize)]
pub(super) struct JoinBody {
    token: String,
    channel: String,
    /// Base64 of the joiner's identity.
    identity: String,
    /// Base64 of the joiner's MLS KeyPackage.
    key_package: String,
}

#[derive(Serialize)]
pub(super) struct JoinCreated {
    join_id: String,
}

/// Redeems an invite with the caller's key package; the caller's account is granted the channel.
pub(super) async fn request_join(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<JoinBody>, JsonRejection>,
) -> Result<(StatusCode, Json<JoinCreated>), ApiError> {
    let Json(body) = body?;
    let channel = parse_channel(&body.channel)?;
    let identity = canonical_base64("identity", &body.identity)?;
    let key_package = canonical_base64("key_package", &body.key_package)?;
    let request = JoinRequest {
        account_id: &caller.account_id,
        channel: &channel,
        invite_token: &body.token,
        identity: &identity,
        key_package: &key_package,
    };
    let join_id = state.storage.redeem_invite(request).await??;
    state.metrics.invites_redeemed.inc();
    state.wake(&[Subject::ChannelJoins(channel.to_string())]).await;
    Ok((StatusCode::CREATED, Json(JoinCreated { join_id })))
}

#[derive(Deserialize)]
pub(super) struct WaitQuery {
    /// Seconds to wait for a change; 0 answers at once.
    wait: Option<u64>,
}

#[derive(Serialize)]
pub(super) struct JoinStatusResponse {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    welcome: Option<String>,
}

/// The joiner's view of its request; while pending, waits (up to `wait` seconds) for the Welcome.
pub(super) async fn join_status(
    State(state): State<AppState>,
    caller: Caller,
    join_id: Result<Path<String>, PathRejection>,
    query: Result<Query<WaitQuery>, QueryRejection>,
) -> Result<Json<JoinStatusResponse>, ApiError> {
    let Path(join_id) = join_id?;
    let Query(query) = query?;
    let wait = wait_duration(query.wait)?;
    let lookup = || async {
        state
            .storage
            .join_state(&join_id, &caller.account_id)
            .await?
            .ok_or_else(|| ApiError::JoinNotFound(join_id.clone()))
    };
    let settled = state
        .signals
        .wait_for(Subject::Join(join_id.clone()), wait, || async {
            let (_, join) = lookup().await?;
            Ok::<_, ApiError>((join.status != JoinStatus::Pending).then_some(join))
        })
        .await?;
    let join = match settled {
        Some(join) => join,
        None => lookup().await?.1,
    };
    Ok(Json(JoinStatusResponse { status: join.status.as_str(), welcome: join.welcome }))
}

#[derive(Deserialize)]
pub(super) struct PendingQuery {
    channel: String,
    wait: Option<u64>,
}

#[derive(Serialize)]
pub(super) struct PendingJoinView {
    join_id: String,
    identity: String,
    key_package: String,
    /// Unix milliseconds.
    created_at: i64,
}

impl From<PendingJoin> for PendingJoinView {
    fn from(join: PendingJoin) -> Self {
        Self {
            join_id: join.join_id,
            identity: join.identity,
            key_package: join.key_package,
            created_at: join.created_at_ms,
        }
    }
}

#[derive(Serialize)]
pub(super) struct PendingJoins {
    joins: Vec<PendingJoinView>,
}

/// A member's view of the channel's pending join requests: answers as soon as there is at least one, or with an
/// empty list after `wait` seconds.
pub(super) async fn pending_joins(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<PendingQuery>, QueryRejection>,
) -> Result<Json<PendingJoins>, ApiError> {
    let Query(query) = query?;
    let channel = parse_channel(&query.channel)?;
    let wait = wait_duration(query.wait)?;
    caller.require_member(&state, &channel).await?;
    let found = state
        .signals
        .wait_for(Subject::ChannelJoins(channel.to_string()), wait, || async {
            let pending = state.storage.pending_joins(&channel).await?;
            Ok::<_, ApiError>((!pending.is_empty()).then_some(pending))
        })
        .await?;
    let joins = found.unwrap_or_default().into_iter().map(PendingJoinView::from).collect();
    Ok(Json(PendingJoins { joins }))
}

#[derive(Deserialize)]
pub(super) struct WelcomeBody {
    channel: String,
    join_ids: Vec<String>,
    /// Base64 MLS Welcome covering every listed join.
    welcome: String,
}

#[derive(Deserialize)]
pub(super) struct RejectBody {
    channel: String,
    join_ids: Vec<String>,
}

#[derive(Serialize)]
pub(super) struct Settled {
    settled: usize,
}

/// Delivers one Welcome to several joiners (one MLS commit can add them all). All listed joins must be pending.
pub(super) async fn welcome_joins(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<WelcomeBody>, JsonRejection>,
) -> Result<Json<Settled>, ApiError> {
    let Json(body) = body?;
    let channel = parse_channel(&body.channel)?;
    let welcome = canonical_base64("welcome", &body.welcome)?;
    settle(&state, &caller, &channel, &body.join_ids, Some(&welcome)).await
}

/// Refuses join requests (e.g. an unusable key package), so their joiners stop waiting.
pub(super) async fn reject_joins(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<RejectBody>, JsonRejection>,
) -> Result<Json<Settled>, ApiError> {
    let Json(body) = body?;
    let channel = parse_channel(&body.channel)?;
    settle(&state, &caller, &channel, &body.join_ids, None).await
}

async fn settle(
    state: &AppState,
    caller: &Caller,
    channel: &ChannelName,
    join_ids: &[String],
    welcome: Option<&str>,
) -> Result<Json<Settled>, ApiError> {
    if join_ids.is_empty() {
        return Err(ApiError::BadRequest("join_ids must not be empty".to_owned()));
    }
    // A repeated id would find its request already settled by the first occurrence and fail the whole post.
    let mut join_ids = join_ids.to_vec();
    join_ids.sort();
    join_ids.dedup();
    let join_ids = join_ids.as_slice();
    caller.require_member(state, channel).await?;
    state.storage.settle_joins(channel, join_ids, welcome).await??;
    if welcome.is_some() {
        state.metrics.joins_admitted.inc_by(join_ids.len() as u64);
    }
    let settled: Vec<Subject> = join_ids.iter().map(|join_id| Subject::Join(join_id.clone())).collect();
    state.wake(&settled).await;
    Ok(Json(Settled { settled: join_ids.len() }))
}

fn wait_duration(requested: Option<u64>) -> Result<Duration, ApiError> {
    match requested.unwrap_or(DEFAULT_WAIT_SECS) {
        secs if secs <= MAX_WAIT_SECS => Ok(Duration::from_secs(secs)),
        _ => Err(ApiError::BadRequest(format!("wait must be at most {MAX_WAIT_SECS} seconds"))),
    }
}

/// Checks that `value` is non-empty standard base64 and returns it re-encoded canonically.
fn canonical_base64(field: &str, value: &str) -> Result<String, ApiError> {
    let bytes = STANDARD.decode(value).map_err(|e| ApiError::BadRequest(format!("{field} is not base64: {e}")))?;
    if bytes.is_empty() {
        return Err(ApiError::BadRequest(format!("{field} must not be empty")));
    }
    Ok(STANDARD.encode(bytes))
}
