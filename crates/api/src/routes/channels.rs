//! Registering channels and creating invites.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::parse_channel;
use crate::caller::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::{now_ms, ChannelRegistration};

/// Longest invite lifetime accepted: 30 days.
const MAX_INVITE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Most uses one invite may have.
const MAX_INVITE_USES: u32 = 10_000;

#[derive(Deserialize)]
pub(super) struct RegisterChannel {
    name: String,
}

#[derive(Serialize)]
pub(super) struct ChannelResponse {
    name: String,
    created: bool,
}

/// Registers a channel under the caller's org: 201 when new, 200 when it already was (re-creating after a client
/// restart is harmless).
pub(super) async fn register_channel(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<RegisterChannel>, JsonRejection>,
) -> Result<(StatusCode, Json<ChannelResponse>), ApiError> {
    let Json(body) = body?;
    let channel = parse_channel(&body.name)?;
    let [org, _, _] = channel.components();
    if org != caller.org {
        return Err(ApiError::Forbidden(format!("channel {channel} is not under your org {}", caller.org)));
    }
    let outcome = state.storage.register_channel(&channel, &caller.account_id).await?;
    let created = outcome == ChannelRegistration::Created;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(ChannelResponse { name: channel.to_string(), created })))
}

#[derive(Deserialize)]
pub(super) struct CreateInvite {
    channel: String,
    #[serde(default = "default_max_uses")]
    max_uses: u32,
    /// Seconds.
    #[serde(default = "default_ttl")]
    ttl: u64,
}

fn default_max_uses() -> u32 {
    1
}

fn default_ttl() -> u64 {
    3600
}

#[derive(Serialize)]
pub(super) struct InviteResponse {
    token: String,
    /// Unix milliseconds.
    expires_at: i64,
}

/// Creates an invite token for a channel the caller is a member of.
pub(super) async fn create_invite(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<CreateInvite>, JsonRejection>,
) -> Result<(StatusCode, Json<InviteResponse>), ApiError> {
    let Json(body) = body?;
    let channel = parse_channel(&body.channel)?;
    if body.max_uses == 0 || body.max_uses > MAX_INVITE_USES {
        return Err(ApiError::BadRequest(format!("max_uses must be between 1 and {MAX_INVITE_USES}")));
    }
    let ttl = Duration::from_secs(body.ttl);
    if ttl.is_zero() || ttl > MAX_INVITE_TTL {
        return Err(ApiError::BadRequest(format!("ttl must be between 1 and {} seconds", MAX_INVITE_TTL.as_secs())));
    }
    caller.require_member(&state, &channel).await?;
    state.quotas.invite(&caller.account_id)?;
    let expires_at = now_ms() + ttl.as_millis() as i64;
    let token = state.storage.create_invite(&channel, &caller.account_id, i64::from(body.max_uses), expires_at).await?;
    Ok((StatusCode::CREATED, Json(InviteResponse { token, expires_at })))
}
