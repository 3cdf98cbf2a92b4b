//! The API's signing keys: several Ed25519 keys, oldest first, of which the newest signs.
//!
//! Several keys make a rotation possible without refusing anyone: tokens signed by an older key keep verifying
//! (every key is published in the JWKS) while new ones are signed by the newest, and the older key is retired once
//! its last token has expired (docs/operations.md, "Signing-key rotation").

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::SigningKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, OctetKeyPairParameters,
    OctetKeyPairType, PublicKeyUse, ThumbprintHash,
};

use crate::KeyError;

/// One key of a ring, with its public half as published.
#[derive(Clone)]
struct RingKey {
    signing: SigningKey,
    jwk: Jwk,
    kid: String,
}

/// Signing keys, oldest first; never empty. The last one signs new tokens; all of them verify.
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<RingKey>,
}

/// Why a ring cannot be built from some keys or lose one; `key_file` turns it into a [`KeyError`] naming the file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RingError {
    #[error("it holds no PRIVATE KEY block")]
    Empty,
    #[error("it holds key {0} twice")]
    Duplicate(String),
    #[error("it holds no key {0}")]
    UnknownKid(String),
    #[error("key {0} is the newest, the one new tokens are signed with")]
    RetiringNewest(String),
    #[error("computing a key id: {0}")]
    Thumbprint(String),
}

impl KeyRing {
    /// A ring of one fresh key, for tests and throwaway servers.
    pub fn generate() -> Result<Self, KeyError> {
        Self::from_keys(vec![fresh_key()]).map_err(|error| KeyError::Signing(error.to_string()))
    }

    /// A ring of `keys`, oldest first. The same key twice is refused: its kid would be published twice.
    pub(crate) fn from_keys(keys: Vec<SigningKey>) -> Result<Self, RingError> {
        if keys.is_empty() {
            return Err(RingError::Empty);
        }
        let mut ring = Self { keys: Vec::with_capacity(keys.len()) };
        for signing in keys {
            let (jwk, kid) = public_jwk(&signing).map_err(RingError::Thumbprint)?;
            if ring.keys.iter().any(|key| key.kid == kid) {
                return Err(RingError::Duplicate(kid));
            }
            ring.keys.push(RingKey { signing, jwk, kid });
        }
        Ok(ring)
    }

    /// The key ids (RFC 7638 thumbprints), oldest first; the last is [`signing_kid`](Self::signing_kid).
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|key| key.kid.as_str()).collect()
    }

    /// The id of the key new tokens are signed with: the newest.
    pub fn signing_kid(&self) -> &str {
        &self.newest().kid
    }

    /// Every key's public half, oldest first, as `/.well-known/jwks.json` publishes them.
    pub fn jwks(&self) -> JwkSet {
        JwkSet { keys: self.keys.iter().map(|key| key.jwk.clone()).collect() }
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.newest().signing
    }

    /// The private keys, oldest first, as they are stored.
    pub(crate) fn signing_keys(&self) -> impl Iterator<Item = &SigningKey> {
        self.keys.iter().map(|key| &key.signing)
    }

    /// This ring with a fresh key appended, which signs from now on.
    pub(crate) fn rotated(&self) -> Result<Self, RingError> {
        let mut keys: Vec<SigningKey> = self.signing_keys().cloned().collect();
        keys.push(fresh_key());
        Self::from_keys(keys)
    }

    /// This ring without the key `kid`, which must be there and must not be the newest (the one that signs).
    pub(crate) fn without(&self, kid: &str) -> Result<Self, RingError> {
        let position =
            self.keys.iter().position(|key| key.kid == kid).ok_or_else(|| RingError::UnknownKid(kid.to_owned()))?;
        if position == self.keys.len() - 1 {
            return Err(RingError::RetiringNewest(kid.to_owned()));
        }
        let mut keys = self.keys.clone();
        keys.remove(position);
        Ok(Self { keys })
    }

    fn newest(&self) -> &RingKey {
        // `from_keys` refuses an empty ring and `without` never removes the last key.
        &self.keys[self.keys.len() - 1]
    }
}

fn fresh_key() -> SigningKey {
    SigningKey::from_bytes(&rand::random::<[u8; 32]>())
}

/// The public half as a JWK (RFC 8037 OKP), with its RFC 7638 thumbprint as `kid` so a rotated key gets a new id;
/// and that kid.
fn public_jwk(key: &SigningKey) -> Result<(Jwk, String), String> {
    let mut jwk = Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            ..Default::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
        }),
    };
    let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|e| e.to_string())?;
    jwk.common.key_id = Some(kid.clone());
    Ok((jwk, kid))
}
