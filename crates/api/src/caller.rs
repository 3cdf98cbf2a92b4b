//! Who is calling: resolved from `Authorization: Bearer <API key | access token>`.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use skytale_proto::ChannelName;

use crate::error::ApiError;
use crate::secrets::API_KEY_PREFIX;
use crate::state::AppState;

/// How the caller proved who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Credential {
    ApiKey,
    AccessToken,
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub account_id: String,
    pub org: String,
    pub credential: Credential,
}

impl Caller {
    /// Refuses (403) unless the caller may act on `channel`: its org owns it, or it was granted it.
    pub(crate) async fn require_member(&self, state: &AppState, channel: &ChannelName) -> Result<(), ApiError> {
        if !state.storage.channel_exists(channel).await? {
            return Err(ApiError::ChannelNotFound(channel.to_string()));
        }
        if state.storage.is_member(&self.account_id, &self.org, channel).await? {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("account is not a member of {channel}")))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        let credential = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim).unwrap_or_default();
        if credential.is_empty() {
            return Err(ApiError::MissingCredentials);
        }
        if credential.starts_with(API_KEY_PREFIX) {
            let owner = state.storage.key_owner(credential).await?.ok_or(ApiError::InvalidApiKey)?;
            if owner.revoked {
                return Err(ApiError::RevokedApiKey);
            }
            tracing::Span::current().record("account", owner.account.id.as_str());
            state.quotas.request(&owner.account.id)?;
            return Ok(Caller { account_id: owner.account.id, org: owner.account.org, credential: Credential::ApiKey });
        }
        let claims = state.keys.current().verifier.verify(credential).map_err(ApiError::InvalidToken)?;
        tracing::Span::current().record("account", claims.sub.as_str());
        state.quotas.request(&claims.sub)?;
        Ok(Caller { account_id: claims.sub, org: claims.org, credential: Credential::AccessToken })
    }
}
