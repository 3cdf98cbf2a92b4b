//! HTTP client for the Skytale API server (`crates/api`, JSON over HTTP(S)): access tokens, channel
//! registration, invites and the invite join flow.
//!
//! Every call authenticates with the API key (not the JWT): the key never expires on its own, so a long-poll
//! that outlives a token still works, and `/v1/tokens` accepts nothing else. The two long-polls (`join/{id}` and
//! `joins`) ask the server to hold the request for up to [`LONG_POLL_WAIT`]; the server answers as soon as the
//! other side acts, so waits are pushed, not polled on a timer.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{with_causes, Error};
use crate::tls::TrustRoots;

/// How long the server may hold a long-poll; below common 30 s proxy idle timeouts, like the server's default.
pub(crate) const LONG_POLL_WAIT: Duration = Duration::from_secs(25);
/// How long a request may take beyond its long-poll wait before it counts as lost.
const REQUEST_SLACK: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an API call failed, before it is mapped to the public [`Error`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiFailure {
    /// No HTTP answer (connection refused, TLS failure, timeout).
    #[error("cannot reach the API at {url}: {}{}", with_causes(source), untrusted_hint(source))]
    Unreachable { url: String, source: reqwest::Error },
    /// The server answered with an error body `{"error": {"code", "message"}}`.
    #[error("API refused {what} ({code}): {message}")]
    Refused { what: &'static str, status: u16, code: String, message: String },
    /// The server answered something this client cannot read.
    #[error("unexpected answer from the API to {what}: {detail}")]
    BadResponse { what: &'static str, detail: String },
}

/// `: <what to do>` when `error` is an untrusted certificate, else nothing.
fn untrusted_hint(error: &reqwest::Error) -> String {
    match crate::tls::is_untrusted_certificate(error) {
        true => format!(": {}", crate::tls::UNTRUSTED_HINT),
        false => String::new(),
    }
}

impl ApiFailure {
    /// Whether trying again later may succeed (the server is down or overloaded, not refusing the request).
    pub fn is_transient(&self) -> bool {
        match self {
            ApiFailure::Unreachable { .. } | ApiFailure::BadResponse { .. } => true,
            ApiFailure::Refused { status, .. } => *status >= 500 || *status == 429,
        }
    }
}

impl From<ApiFailure> for Error {
    fn from(failure: ApiFailure) -> Self {
        let text = failure.to_string();
        match &failure {
            ApiFailure::Refused { code, .. } if code.starts_with("invite_") => Error::Channel(text),
            ApiFailure::Refused { status: 401 | 403, .. } => Error::Auth(text),
            ApiFailure::Refused { status: 429, .. } => Error::Quota(text),
            ApiFailure::Refused { status, .. } if *status < 500 => Error::Channel(text),
            _ => Error::Transport(text),
        }
    }
}

/// A JWT for the relay and when it stops being valid.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct AccessToken {
    #[serde(rename = "token")]
    pub jwt: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// A join request waiting for a channel member to admit it.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct PendingJoin {
    pub join_id: String,
    /// Base64 of the identity the joiner claims.
    pub identity: String,
    /// Base64 of the joiner's MLS KeyPackage (MLSMessage).
    pub key_package: String,
}

/// Where a join request stands, as its joiner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum JoinStatus {
    Pending,
    /// The Welcome (MLSMessage bytes) to join with.
    Welcomed(Vec<u8>),
    Rejected,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

#[derive(Deserialize)]
struct InviteCreated {
    token: String,
}

#[derive(Deserialize)]
struct JoinCreated {
    join_id: String,
}

#[derive(Deserialize)]
struct JoinStatusBody {
    status: String,
    welcome: Option<String>,
}

#[derive(Deserialize)]
struct PendingJoins {
    joins: Vec<PendingJoin>,
}

#[derive(Deserialize)]
struct Ignored {}

#[derive(Serialize)]
struct Settle<'a> {
    channel: &'a str,
    join_ids: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    welcome: Option<String>,
}

/// A client of one API server, authenticated with one API key.
pub(crate) struct ApiClient {
    http: reqwest::Client,
    base: String,
    api_key: String,
}

impl ApiClient {
    pub fn new(base_url: &str, api_key: &str, roots: &TrustRoots) -> Result<Self, Error> {
        let builder =
            reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT).https_only(crate::tls::is_https(base_url));
        let http =
            roots.http(builder)?.build().map_err(|e| Error::Runtime(format!("cannot build the API client: {e}")))?;
        Ok(Self { http, base: base_url.trim_end_matches('/').to_owned(), api_key: api_key.to_owned() })
    }

    /// `POST /v1/tokens`: exchanges the API key for a relay access token.
    pub async fn access_token(&self) -> Result<AccessToken, ApiFailure> {
        self.send("the API key", self.http.post(self.url("/v1/tokens")), Duration::ZERO).await
    }

    /// `POST /v1/channels`: registers `channel` under this account's org (harmless if it already is).
    pub async fn register_channel(&self, channel: &str) -> Result<(), ApiFailure> {
        let request = self.http.post(self.url("/v1/channels")).json(&serde_json::json!({ "name": channel }));
        self.send::<Ignored>("registering the channel", request, Duration::ZERO).await.map(drop)
    }

    /// `POST /v1/channels/invites`: a new `skt_inv_...` token.
    pub async fn create_invite(&self, channel: &str, max_uses: u32, ttl: Duration) -> Result<String, ApiFailure> {
        let body = serde_json::json!({ "channel": channel, "max_uses": max_uses, "ttl": ttl.as_secs() });
        let request = self.http.post(self.url("/v1/channels/invites")).json(&body);
        Ok(self.send::<InviteCreated>("the invite", request, Duration::ZERO).await?.token)
    }

    /// `POST /v1/channels/join`: redeems `token` with a key package; returns the join id to wait on.
    pub async fn request_join(
        &self,
        token: &str,
        channel: &str,
        identity: &[u8],
        key_package: &[u8],
    ) -> Result<String, ApiFailure> {
        let body = serde_json::json!({
            "token": token,
            "channel": channel,
            "identity": STANDARD.encode(identity),
            "key_package": STANDARD.encode(key_package),
        });
        let request = self.http.post(self.url("/v1/channels/join")).json(&body);
        Ok(self.send::<JoinCreated>("the join request", request, Duration::ZERO).await?.join_id)
    }

    /// `GET /v1/channels/join/{id}`: waits up to `wait` for the request to be welcomed or rejected.
    pub async fn join_status(&self, join_id: &str, wait: Duration) -> Result<JoinStatus, ApiFailure> {
        let what = "the join status request";
        let request =
            self.http.get(self.url(&format!("/v1/channels/join/{join_id}"))).query(&[("wait", wait.as_secs())]);
        let body: JoinStatusBody = self.send(what, request, wait).await?;
        match (body.status.as_str(), body.welcome) {
            ("pending", _) => Ok(JoinStatus::Pending),
            ("rejected", _) => Ok(JoinStatus::Rejected),
            ("welcomed", Some(welcome)) => STANDARD
                .decode(welcome)
                .map(JoinStatus::Welcomed)
                .map_err(|e| ApiFailure::BadResponse { what, detail: format!("Welcome is not base64: {e}") }),
            (status, _) => Err(ApiFailure::BadResponse { what, detail: format!("unknown join status {status:?}") }),
        }
    }

    /// `GET /v1/channels/joins`: waits up to `wait` until `channel` has pending join requests.
    pub async fn pending_joins(&self, channel: &str, wait: Duration) -> Result<Vec<PendingJoin>, ApiFailure> {
        let request = self
            .http
            .get(self.url("/v1/channels/joins"))
            .query(&[("channel", channel.to_owned()), ("wait", wait.as_secs().to_string())]);
        Ok(self.send::<PendingJoins>("the pending joins request", request, wait).await?.joins)
    }

    /// `POST /v1/channels/joins/welcome`: hands one Welcome to every listed joiner.
    pub async fn welcome_joins(&self, channel: &str, join_ids: &[String], welcome: &[u8]) -> Result<(), ApiFailure> {
        let body = Settle { channel, join_ids, welcome: Some(STANDARD.encode(welcome)) };
        let request = self.http.post(self.url("/v1/channels/joins/welcome")).json(&body);
        self.send::<Ignored>("the Welcome", request, Duration::ZERO).await.map(drop)
    }

    /// `POST /v1/channels/joins/reject`: refuses the listed join requests.
    pub async fn reject_joins(&self, channel: &str, join_ids: &[String]) -> Result<(), ApiFailure> {
        let body = Settle { channel, join_ids, welcome: None };
        let request = self.http.post(self.url("/v1/channels/joins/reject")).json(&body);
        self.send::<Ignored>("the join rejection", request, Duration::ZERO).await.map(drop)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        what: &'static str,
        request: reqwest::RequestBuilder,
        wait: Duration,
    ) -> Result<T, ApiFailure> {
        let unreachable = |source| ApiFailure::Unreachable { url: self.base.clone(), source };
        let response =
            request.bearer_auth(&self.api_key).timeout(wait + REQUEST_SLACK).send().await.map_err(unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| ApiFailure::BadResponse { what, detail: e.to_string() });
        }
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(ErrorBody { error }) => (error.code, error.message),
            Err(_) => (format!("http_{}", status.as_u16()), String::from_utf8_lossy(&body).chars().take(200).collect()),
        };
        Err(ApiFailure::Refused { what, status: status.as_u16(), code, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16, code: &str) -> Error {
        ApiFailure::Refused { what: "x", status, code: code.into(), message: "m".into() }.into()
    }

    #[test]
    fn refusals_map_to_the_public_error_kinds() {
        assert!(matches!(refused(401, "invalid_api_key"), Error::Auth(_)));
        assert!(matches!(refused(403, "forbidden"), Error::Auth(_)));
        assert!(matches!(refused(403, "invite_wrong_channel"), Error::Channel(_)));
        assert!(matches!(refused(410, "invite_expired"), Error::Channel(_)));
        assert!(matches!(refused(429, "rate_limited"), Error::Quota(_)));
        assert!(matches!(refused(404, "channel_not_found"), Error::Channel(_)));
        assert!(matches!(refused(500, "storage"), Error::Transport(_)));
        assert_eq!(refused(401, "invalid_api_key").to_string(), "auth error: API refused x (invalid_api_key): m");
    }
}
