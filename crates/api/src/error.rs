//! Errors returned by the HTTP API, each with a stable `code` and an HTTP status.
//!
//! Body shape: `{"error": {"code": "...", "message": "..."}}`. Clients branch on `code`; `message` is for humans.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use std::time::Duration;

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use skytale_auth::TokenError;

use crate::storage::{JoinRefusal, StorageError, WelcomeRefusal};

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing Authorization: Bearer credentials")]
    MissingCredentials,
    #[error("unknown API key")]
    InvalidApiKey,
    #[error("API key has been revoked")]
    RevokedApiKey,
    #[error("{0}")]
    InvalidToken(TokenError),
    #[error("this endpoint needs an API key, not an access token")]
    ApiKeyRequired,
    #[error("{0}")]
    Forbidden(String),
    #[error("channel {0} is not registered")]
    ChannelNotFound(String),
    #[error("join request {0} not found")]
    JoinNotFound(String),
    #[error("join request {0} was already welcomed or rejected")]
    JoinNotPending(String),
    #[error("invite token is not valid")]
    InviteNotFound,
    #[error("invite token is for another channel")]
    InviteWrongChannel,
    #[error("invite token has expired")]
    InviteExpired,
    #[error("invite token has no uses left")]
    InviteUsedUp,
    #[error("{0}")]
    InvalidChannelName(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("this account is over its quota of {limit}: retry in {} s", retry_after_secs(.retry_after))]
    QuotaExceeded { limit: &'static str, retry_after: Duration },
    #[error("internal error")]
    Internal(String),
    #[error("storage error")]
    Storage(#[from] StorageError),
}

impl ApiError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingCredentials => "missing_credentials",
            Self::InvalidApiKey => "invalid_api_key",
            Self::RevokedApiKey => "revoked_api_key",
            Self::InvalidToken(TokenError::Expired) => "token_expired",
            Self::InvalidToken(_) => "invalid_token",
            Self::ApiKeyRequired => "api_key_required",
            Self::Forbidden(_) => "forbidden",
            Self::ChannelNotFound(_) => "channel_not_found",
            Self::JoinNotFound(_) => "join_not_found",
            Self::JoinNotPending(_) => "join_not_pending",
            Self::InviteNotFound => "invite_not_found",
            Self::InviteWrongChannel => "invite_wrong_channel",
            Self::InviteExpired => "invite_expired",
            Self::InviteUsedUp => "invite_used_up",
            Self::InvalidChannelName(_) => "invalid_channel_name",
            Self::BadRequest(_) => "bad_request",
            Self::QuotaExceeded { .. } => "quota_exceeded",
            Self::Internal(_) => "internal",
            Self::Storage(_) => "storage",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingCredentials
            | Self::InvalidApiKey
            | Self::RevokedApiKey
            | Self::InvalidToken(_)
            | Self::ApiKeyRequired => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::InviteWrongChannel => StatusCode::FORBIDDEN,
            Self::ChannelNotFound(_) | Self::JoinNotFound(_) | Self::InviteNotFound => StatusCode::NOT_FOUND,
            Self::JoinNotPending(_) => StatusCode::CONFLICT,
            Self::InviteExpired | Self::InviteUsedUp => StatusCode::GONE,
            Self::InvalidChannelName(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::QuotaExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) | Self::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            // Internal details go to the log, not to the client.
            Self::Storage(e) => tracing::error!(error = %e, "storage failure"),
            Self::Internal(e) => tracing::error!(error = %e, "internal failure"),
            _ => {}
        }
        let body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        let mut response = (self.status(), Json(body)).into_response();
        if let Self::QuotaExceeded { retry_after, .. } = &self {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry_after_secs(retry_after)));
        }
        response
    }
}

/// Whole seconds, rounded up: `Retry-After` has no fractions, and waiting too little would be refused again.
fn retry_after_secs(wait: &Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl From<JoinRefusal> for ApiError {
    fn from(refusal: JoinRefusal) -> Self {
        match refusal {
            JoinRefusal::UnknownInvite => Self::InviteNotFound,
            JoinRefusal::WrongChannel => Self::InviteWrongChannel,
            JoinRefusal::Expired => Self::InviteExpired,
            JoinRefusal::UsedUp => Self::InviteUsedUp,
        }
    }
}

impl From<WelcomeRefusal> for ApiError {
    fn from(refusal: WelcomeRefusal) -> Self {
        match refusal {
            WelcomeRefusal::UnknownJoin(id) => Self::JoinNotFound(id),
            WelcomeRefusal::NotPending(id) => Self::JoinNotPending(id),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}
