//! Checking tokens (relay side).

use std::collections::HashMap;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::issuer::public_jwk;
use crate::{key_file, Claims, KeyError, TokenError, AUDIENCE, CLOCK_LEEWAY_SECS, ISSUER};

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

    /// Builds a verifier from the API's private key file, for a relay on the same host as the API.
    pub fn from_key_file(path: &Path) -> Result<Self, KeyError> {
        let jwk = public_jwk(&key_file::load(path)?)?;
        Self::from_jwks(&JwkSet { keys: vec![jwk] })
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
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(Self { keys, validation })
    }

    /// Verifies the value of an `authorization` header (`Bearer <token>`); `None` means the header was absent.
    pub fn verify_bearer(&self, header: Option<&str>) -> Result<Claims, TokenError> {
        let token = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim).unwrap_or_default();
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        self.verify(token)
    }

    /// Verifies a compact JWT: signature by a known key, expiry (with leeway), issuer and audience.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Malformed(format!("algorithm {:?}, expected EdDSA", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| TokenError::Malformed("no key id (kid) in header".to_owned()))?;
        let key = self.keys.get(&kid).ok_or(TokenError::Forged)?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation).map(|data| data.claims).map_err(|e| {
            match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidSignature | ErrorKind::InvalidEddsaKey => TokenError::Forged,
                ErrorKind::InvalidIssuer => TokenError::WrongAudience(format!("issuer is not {ISSUER}")),
                ErrorKind::InvalidAudience => TokenError::WrongAudience(format!("audience is not {AUDIENCE}")),
                _ => TokenError::Malformed(e.to_string()),
            }
        })
    }
}
