//! Learning the API's public keys over HTTP(S), for a relay that does not share a host with the API.
//!
//! The key set is fetched once, when the relay starts: a relay that cannot verify tokens must not start serving,
//! and the API's signing key is long-lived (a rotation means restarting the relays).

use std::time::Duration;

use skytale_auth::{KeyError, TokenVerifier};

/// How long the fetch may take before the relay gives up starting.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the API's key set could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot fetch the JWK set from {url}: {source}")]
    Fetch {
        url: String,
        #[source]
        source: reqwest::Error,
    },
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
    let fetch_error = |source| JwksError::Fetch {
        url: url.to_owned(),
        source,
    };
    let client = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .build()
        .map_err(fetch_error)?;
    let response = client.get(url).send().await.map_err(fetch_error)?;
    let status = response.status();
    if !status.is_success() {
        return Err(JwksError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
        });
    }
    let body = response.text().await.map_err(fetch_error)?;
    TokenVerifier::from_jwks_json(&body).map_err(|source| JwksError::Keys {
        url: url.to_owned(),
        source,
    })
}
