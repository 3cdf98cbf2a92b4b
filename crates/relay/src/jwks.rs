//! Learning the API's public keys over HTTP(S), for a relay that does not share a host with the API.
//!
//! The key set is fetched when the relay starts (a relay that cannot verify tokens must not start serving), and
//! again as the API rotates its signing keys: when a token names a key the relay does not know, and periodically
//! (`trusted_keys`, which decides when; this module only fetches).

use std::time::Duration;

use skytale_auth::{KeyError, TokenVerifier};

/// How long a fetch may take before the relay gives up starting, or keeps the keys it has.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the API's key set could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// `reason` spells out the whole cause chain (reqwest's own message omits e.g. "connection refused").
    #[error("cannot fetch the JWK set from {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("fetching the JWK set from {url} returned HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("the JWK set from {url} is unusable: {source}")]
    Keys {
        url: String,
        #[source]
        source: KeyError,
    },
}

/// Fetches `url` (the API's `/.well-known/jwks.json`) and builds a verifier from it.
pub async fn fetch_verifier(url: &str) -> Result<TokenVerifier, JwksError> {
    let fetch_error = |error: reqwest::Error| JwksError::Fetch { url: url.to_owned(), reason: cause_chain(&error) };
    let client = reqwest::Client::builder().timeout(FETCH_TIMEOUT).build().map_err(fetch_error)?;
    let response = client.get(url).send().await.map_err(fetch_error)?;
    let status = response.status();
    if !status.is_success() {
        return Err(JwksError::Status { url: url.to_owned(), status: status.as_u16() });
    }
    let body = response.text().await.map_err(fetch_error)?;
    TokenVerifier::from_jwks_json(&body).map_err(|source| JwksError::Keys { url: url.to_owned(), source })
}

/// `error: its cause: its cause's cause...`
fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
