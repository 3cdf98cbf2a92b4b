//! Typed errors: each variant names the problem so the relay can report it and the API can map it to a status.

use std::path::PathBuf;

/// Why a token was refused. Each message is a sentence for the person holding the token: what is wrong with it
/// and what to do, never the JWT library's own wording (which names serde variants and internal types).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// No token was presented (no `authorization` header, or not a `Bearer` one).
    #[error("missing token: send `authorization: Bearer <JWT>` with a token from the API's POST /v1/tokens")]
    Missing,
    /// The token is not a well-formed JWT of the expected shape; the detail says which part is wrong.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header names an algorithm other than EdDSA (`none` and HMAC ones included): refused before any key
    /// is looked at, so a token can never choose how it is checked.
    #[error("token algorithm {0} is not accepted; expected EdDSA")]
    WrongAlgorithm(String),
    /// The header's key id is not one of the keys this verifier trusts.
    #[error(
        "token signed by unknown key {0}: it was not issued by the Skytale API this service trusts; fetch a new token"
    )]
    UnknownKey(String),
    /// The signature does not verify with the key the header names: the token was altered or forged.
    #[error("bad token signature: the token was altered, or not signed by the Skytale API")]
    BadSignature,
    /// The token was valid once but its `exp` has passed.
    #[error("expired token: fetch a new one from the API")]
    Expired,
    /// The token's `nbf` is still in the future.
    #[error("token not valid yet: its start time (nbf) is in the future; check the clocks of the API and this host")]
    NotYetValid,
    /// Signed by a known key but meant for another issuer or audience.
    #[error("token not meant for this service: {0}")]
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
    /// The key file does not hold Ed25519 PKCS#8 PEM keys, one `PRIVATE KEY` block each; `reason` says which
    /// part is wrong.
    #[error("key file {path} does not hold Ed25519 PKCS#8 PEM keys: {reason}")]
    InvalidKeyFile { path: PathBuf, reason: String },
    /// A key to retire that the key file does not hold.
    #[error("key file {path} holds no key {kid}; its keys, oldest first: {}", .known.join(", "))]
    UnknownKeyId { path: PathBuf, kid: String, known: Vec<String> },
    /// Retiring the newest key would leave the API signing with a key the relays may not know yet, or with none.
    #[error(
        "key {kid} is the newest in {path}, the one new tokens are signed with, so it cannot be retired; rotate \
         (add a newer key) first, and retire this one once the tokens it signed have expired"
    )]
    RetiringSigningKey { path: PathBuf, kid: String },
    /// A JWK set could not be parsed or holds no usable Ed25519 key.
    #[error("invalid JWK set: {0}")]
    InvalidKeySet(String),
    /// Signing a token failed (should not happen with a valid key).
    #[error("signing token: {0}")]
    Signing(String),
}
