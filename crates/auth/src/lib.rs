//! The token contract shared by the Skytale API server and the relay.
//!
//! The API exchanges an API key for a short-lived JWT ([`TokenIssuer`]); the relay checks that JWT on every
//! stream ([`TokenVerifier`]) and asks the resulting [`Claims`] whether a channel may be used. Both sides live in
//! this one small crate so the claim names, issuer, audience and algorithm cannot drift apart.
//!
//! Tokens are EdDSA (Ed25519) JWTs. The API holds a [`KeyRing`] of signing keys (a file of PEM blocks, oldest
//! first): the newest signs, all are published, so keys rotate without refusing tokens already issued
//! ([`rotate_signing_key`], [`retire_signing_key`]). The relay learns the public keys either from the API's
//! `/.well-known/jwks.json` ([`TokenVerifier::from_jwks_json`]) or from the API's key file
//! ([`TokenVerifier::from_key_file`]) when both run on one machine; [`FileStamp`] tells a server when to read the
//! key file again.

mod claims;
mod error;
mod file_stamp;
mod issuer;
mod key_file;
mod key_ring;
mod verifier;

pub use claims::Claims;
pub use error::{KeyError, TokenError};
pub use file_stamp::FileStamp;
pub use issuer::{IssuedToken, TokenIssuer};
pub use jsonwebtoken::jwk::JwkSet;
pub use key_file::{retire_signing_key, rotate_signing_key};
pub use key_ring::KeyRing;
pub use verifier::TokenVerifier;

/// `iss` of every token: the Skytale API.
pub const ISSUER: &str = "skytale-api";
/// `aud` of every token: the relay is the only party meant to accept it.
pub const AUDIENCE: &str = "skytale-relay";
/// How long an issued token is valid. Short, because a revoked API key must stop working soon; clients refresh
/// before expiry.
pub const TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// How often a server looks at the key file it follows (the API its signing keys, a relay on the API's host the
/// keys it trusts): a change is in effect this long after it at the latest.
pub const KEY_FILE_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
/// Clock skew tolerated when checking `exp` and `iat` between the API and relay hosts.
pub const CLOCK_LEEWAY_SECS: u64 = 30;
