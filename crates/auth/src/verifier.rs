//! Checking tokens (relay side).

use std::collections::HashMap;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::{Claims, KeyError, KeyRing, TokenError, AUDIENCE, CLOCK_LEEWAY_SECS, ISSUER};

/// Verifies Skytale access tokens against a set of Ed25519 public keys, selected by the token's `kid`.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
}

impl TokenVerifier {
    /// Builds a verifier from the JSON served at the API's `/.well-known/jwks.json`.
    pub fn from_jwks_json(json: &str) -> Result<Self, KeyError> {
        let set: JwkSet = serde_json::from_str(json).map_err(|e| KeyError::InvalidKeySet(e.to_string()))?;
        Self::from_jwks(&set)
    }

    /// Builds a verifier from the API's private key file, for a relay on the same host as the API: every key of
    /// its ring verifies.
    pub fn from_key_file(path: &Path) -> Result<Self, KeyError> {
        Self::from_jwks(&KeyRing::load(path)?.jwks())
    }

    /// Builds a verifier from a parsed key set. Keys that are not Ed25519 are ignored; a set without any usable
    /// key is an error, since such a verifier would refuse every token.
    pub fn from_jwks(set: &JwkSet) -> Result<Self, KeyError> {
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let AlgorithmParameters::OctetKeyPair(okp) = &jwk.algorithm else { continue };
            if okp.curve != EllipticCurve::Ed25519 {
                continue;
            }
            let Some(kid) = jwk.common.key_id.clone() else { continue };
            // jsonwebtoken slices the key to 32 bytes without checking its length, so check it here.
            let raw = URL_SAFE_NO_PAD.decode(&okp.x).map_err(|e| KeyError::InvalidKeySet(format!("key {kid}: {e}")))?;
            if raw.len() != 32 {
                return Err(KeyError::InvalidKeySet(format!("key {kid}: Ed25519 key must be 32 bytes")));
            }
            let key = DecodingKey::from_jwk(jwk).map_err(|e| KeyError::InvalidKeySet(format!("key {kid}: {e}")))?;
            keys.insert(kid, key);
        }
        if keys.is_empty() {
            return Err(KeyError::InvalidKeySet("no Ed25519 key with a key id".to_owned()));
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = CLOCK_LEEWAY_SECS;
        // Checked only when a token has `nbf` (the API's do not); a token made to start later waits for it.
        validation.validate_nbf = true;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(Self { keys, validation })
    }

    /// The ids of the keys this verifier trusts, sorted (for logs).
    pub fn key_ids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }

    /// Verifies the value of an `authorization` header (`Bearer <token>`); `None` means the header was absent.
    pub fn verify_bearer(&self, header: Option<&str>) -> Result<Claims, TokenError> {
        let token = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim).unwrap_or_default();
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        self.verify(token)
    }

    /// Verifies a compact JWT: algorithm, signature by a known key, expiry and start (with leeway), issuer and
    /// audience.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = read_header(token)?;
        if header.alg != "EdDSA" {
            return Err(TokenError::WrongAlgorithm(shown(&header.alg)));
        }
        let kid = header.kid.ok_or_else(|| malformed("its header names no key id (kid)"))?;
        let key = self.keys.get(&kid).ok_or_else(|| TokenError::UnknownKey(shown(&kid)))?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation).map(|data| data.claims).map_err(|e| {
            match e.into_kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidSignature | ErrorKind::InvalidEddsaKey => TokenError::BadSignature,
                ErrorKind::InvalidIssuer => TokenError::WrongAudience(format!("its issuer is not {ISSUER}")),
                ErrorKind::InvalidAudience => TokenError::WrongAudience(format!("its audience is not {AUDIENCE}")),
                ErrorKind::MissingRequiredClaim(claim) => malformed(&format!("it has no `{}` claim", shown(&claim))),
                ErrorKind::InvalidClaimFormat(claim) => {
                    malformed(&format!("its `{}` claim has the wrong type", shown(&claim)))
                }
                ErrorKind::InvalidToken => malformed(NOT_A_JWT),
                ErrorKind::Base64(_) => malformed("a part of it is not base64url"),
                ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                    malformed("its claims are not those of a Skytale token (iss, aud, sub, org, iat, exp)")
                }
                _ => malformed("its signature could not be checked"),
            }
        })
    }
}

const NOT_A_JWT: &str = "it is not a JWT (three base64url parts separated by dots)";

/// The two header fields a verifier looks at before anything else. `alg` is read as plain text, not as the JWT
/// library's algorithm enum, so `none` or an unknown name gets the wrong-algorithm error rather than a JSON one.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

fn read_header(token: &str) -> Result<RawHeader, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_claims), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(NOT_A_JWT));
    };
    let json = URL_SAFE_NO_PAD.decode(header).map_err(|_| malformed("its header is not base64url"))?;
    serde_json::from_slice(&json).map_err(|_| malformed("its header is not a JSON object with an `alg` text"))
}

fn malformed(detail: &str) -> TokenError {
    TokenError::Malformed(detail.to_owned())
}

/// Most of a name taken from a token, escaped: enough to recognise it in a message, never a wall of text or a
/// control character from whoever wrote the token.
fn shown(text: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut out: String = text.chars().take(MAX_CHARS).flat_map(char::escape_debug).collect();
    if text.chars().nth(MAX_CHARS).is_some() {
        out.push_str("...");
    }
    out
}
