//! Typed errors: each variant names the problem so the relay can report it and the API can map it to a status.

use std::path::PathBuf;

/// Why a token was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// No token was presented (no `authorization` header, or not a `Bearer` one).
    #[error("missing bearer token")]
    Missing,
    /// The token is not a well-formed JWT of the expected shape.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The token was valid once but its `exp` has passed.
    #[error("token expired")]
    Expired,
    /// The signature does not verify, or the token names a key this verifier does not know.
    #[error("token signature is not valid for any known key")]
    Forged,
    /// Signed by a known key but meant for another issuer or audience.
    #[error("token is not issued for this service: {0}")]
    WrongAudience(String),
}

/// Why a signing key or a key set could not be loaded, created or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The key file exists but is readable by other users; a leaked signing key lets anyone mint tokens.
    #[error("key file {path} is accessible by other users (mode {mode:o}); expected 0600")]
    InsecurePermissions { path: PathBuf, mode: u32 },
    /// The key file does not hold a PKCS#8 Ed25519 private key.
    #[error("key file {path} does not hold an Ed25519 PKCS#8 PEM key: {reason}")]
    InvalidKeyFile { path: PathBuf, reason: String },
    /// A JWK set could not be parsed or holds no usable Ed25519 key.
    #[error("invalid JWK set: {0}")]
    InvalidKeySet(String),
    /// Signing a token failed (should not happen with a valid key).
    #[error("signing token: {0}")]
    Signing(String),
}
