//! Bearer secrets (API keys, invite tokens) and opaque ids.
//!
//! Secrets are shown to their owner once and only their SHA-256 is stored: a leaked database does not leak usable
//! keys. 32 random bytes make brute-forcing the hash pointless, so no slow password hash is needed.

use sha2::{Digest, Sha256};

/// Prefix of every API key, so keys are recognisable in configs and by secret scanners.
pub const API_KEY_PREFIX: &str = "sk_live_";
/// Prefix of every invite token.
pub const INVITE_PREFIX: &str = "skt_inv_";

/// A new API key: `sk_live_` + 32 random bytes in hex.
pub(crate) fn new_api_key() -> String {
    format!("{API_KEY_PREFIX}{}", random_hex::<32>())
}

/// A new invite token: `skt_inv_` + 32 random bytes in hex.
pub(crate) fn new_invite_token() -> String {
    format!("{INVITE_PREFIX}{}", random_hex::<32>())
}

/// A new opaque id such as `acct_1f…`; 16 random bytes, so ids never collide and need no sequence (which SQLite
/// and PostgreSQL would spell differently).
pub(crate) fn new_id(kind: &str) -> String {
    format!("{kind}_{}", random_hex::<16>())
}

/// The stored form of a secret.
pub(crate) fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_hex<const N: usize>() -> String {
    hex::encode(rand::random::<[u8; N]>())
}
