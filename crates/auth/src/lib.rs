//! The token contract shared by the Skytale API server and the relay.
//!
//! The API exchanges an API key for a short-lived JWT ([`TokenIssuer`]); the relay checks that JWT on every
//! stream ([`TokenVerifier`]) and asks the resulting [`Claims`] whether a channel may be used. Both sides live in
//! this one small crate so the claim names, issuer, audience and algorithm cannot drift apart.
//!
//! Tokens are EdDSA (Ed25519) JWTs. The relay learns the public key either from the API's
//! `/.well-known/jwks.json` ([`TokenVerifier::from_jwks_json`]) or from the API's key file
//! ([`TokenVerifier::from_key_file`]) when both run on one machine.

mod claims;
mod error;
mod issuer;
mod key_file;
mod verifier;

pub use claims::Claims;
pub use error::{KeyError, TokenError};
pub use issuer::{IssuedToken, TokenIssuer};
pub use jsonwebtoken::jwk::JwkSet;
pub use verifier::TokenVerifier;

/// `iss` of every token: the Skytale API.
pub const ISSUER: &str = "skytale-api";
/// `aud` of every token: the relay is the only party meant to accept it.
pub const AUDIENCE: &str = "skytale-relay";
/// How long an issued token is valid. Short, because a revoked API key must stop working soon; clients refresh
/// before expiry.
pub const TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// Clock skew tolerated when checking `exp` and `iat` between the API and relay hosts.
pub const CLOCK_LEEWAY_SECS: u64 = 30;
