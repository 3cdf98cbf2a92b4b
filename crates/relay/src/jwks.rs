//! Learning the API's public keys over HTTP(S), for a relay that does not share a host with the API.
//!
//! The key set is fetched when the relay starts (a relay that cannot verify tokens must not start serving), and
//! again as the API rotates its signing keys: when a token names a key the relay does not know, and periodically
//! (`trusted_keys`, which decides when; this module only fetches). An API behind a private CA is trusted with
//! [`JwksFollow::ca_file`] (`--jwks-ca-file`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use skytale_auth::{KeyError, TokenVerifier};

/// How long a fetch may take before the relay gives up starting, or keeps the keys it has.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Default [`JwksFollow::refresh_interval`] (`skytale relay --jwks-refresh-interval`).
pub const DEFAULT_JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Default [`JwksFollow::unknown_kid_interval`]: a client sending tokens with made-up key ids costs the API one
/// request per this long, whatever their number.
pub const DEFAULT_JWKS_UNKNOWN_KID_INTERVAL: Duration = Duration::from_secs(10);

/// Where a relay fetches the API's key set, and how often it does so again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwksFollow {
    /// The API's `/.well-known/jwks.json`.
    pub url: String,
    /// Fetched again this often, so a retired key stops verifying within this long.
    pub refresh_interval: Duration,
    /// A token signed by a key the relay does not know makes it fetch again, at most this often.
    pub unknown_kid_interval: Duration,
    /// CA certificates (PEM) trusted for `url` besides the public roots: for an API whose certificate a private
    /// CA issued (`skytale dev --tls`'s, or a company's).
    pub ca_file: Option<PathBuf>,
}

impl JwksFollow {
    /// Following `url` with the default intervals.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            refresh_interval: DEFAULT_JWKS_REFRESH_INTERVAL,
            unknown_kid_interval: DEFAULT_JWKS_UNKNOWN_KID_INTERVAL,
            ca_file: None,
        }
    }
}

/// Why the API's key set could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// `reason` spells out the whole cause chain (reqwest's own message omits e.g. "connection refused").
    #[error("cannot fetch the JWK set from {url}: {reason}")]
    Fetch { url: String, reason: String },
    /// The CA of `--jwks-ca-file` could not be read: the relay would refuse the API's certificate.
    #[error("cannot use {path} as the CA for the JWK set's URL: {reason}; give a PEM file of CA certificates")]
    CaFile { path: PathBuf, reason: String },
    #[error("fetching the JWK set from {url} returned HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("the JWK set from {url} is unusable: {source}")]
    Keys {
        url: String,
        #[source]
        source: KeyError,
    },
}

/// Fetches `follow.url` (the API's `/.well-known/jwks.json`) and builds a verifier from it. The CA file, if any, is
/// read at every fetch, so a renewed private CA is trusted from the next fetch (or SIGHUP) on.
pub async fn fetch_verifier(follow: &JwksFollow) -> Result<TokenVerifier, JwksError> {
    let url = follow.url.as_str();
    let fetch_error = |error: reqwest::Error| JwksError::Fetch { url: url.to_owned(), reason: cause_chain(&error) };
    let mut builder = reqwest::Client::builder().timeout(FETCH_TIMEOUT);
    for ca in follow.ca_file.as_deref().map(read_ca_file).transpose()?.into_iter().flatten() {
        builder = builder.add_root_certificate(ca);
    }
    let client = builder.build().map_err(fetch_error)?;
    let response = client.get(url).send().await.map_err(fetch_error)?;
    let status = response.status();
    if !status.is_success() {
        return Err(JwksError::Status { url: url.to_owned(), status: status.as_u16() });
    }
    let body = response.text().await.map_err(fetch_error)?;
    TokenVerifier::from_jwks_json(&body).map_err(|source| JwksError::Keys { url: url.to_owned(), source })
}

/// The CA certificates of a PEM file, trusted besides the public roots.
fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, JwksError> {
    let unusable = |reason: String| JwksError::CaFile { path: path.to_owned(), reason };
    let pem = std::fs::read(path).map_err(|error| unusable(error.to_string()))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| unusable(cause_chain(&error)))?;
    if certificates.is_empty() {
        return Err(unusable("it holds no CERTIFICATE block".to_owned()));
    }
    Ok(certificates)
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
