//! `POST /v1/tokens` (API key -> access token) and the public key set.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use skytale_auth::JwkSet;

use crate::caller::{Caller, Credential};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Serialize)]
pub(super) struct TokenResponse {
    token: String,
    /// Unix seconds.
    expires_at: u64,
}

/// Exchanges an API key for a short-lived JWT carrying the account, its org and its channel grants. Only an API
/// key is accepted: letting a token mint its successor would keep a revoked key's access alive forever.
pub(super) async fn issue_token(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<TokenResponse>, ApiError> {
    if caller.credential != Credential::ApiKey {
        return Err(ApiError::ApiKeyRequired);
    }
    let granted = state.storage.granted_channels(&caller.account_id).await?;
    let keys = state.keys.current();
    let issued =
        keys.issuer.issue(&caller.account_id, &caller.org, granted).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(TokenResponse { token: issued.token, expires_at: issued.expires_at }))
}

/// The public keys the relay verifies tokens with: every key of the signing ring, oldest first.
pub(super) async fn jwks(State(state): State<AppState>) -> Json<JwkSet> {
    Json(state.keys.current().issuer.jwks())
}
