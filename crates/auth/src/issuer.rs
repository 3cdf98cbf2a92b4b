//! Minting tokens (API side).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::SigningKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, OctetKeyPairParameters,
    OctetKeyPairType, PublicKeyUse, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::{key_file, Claims, KeyError, TokenVerifier, AUDIENCE, ISSUER, TOKEN_LIFETIME};

/// A freshly issued token and when it stops being valid.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    /// The compact JWT.
    pub token: String,
    /// Unix seconds after which the relay refuses it.
    pub expires_at: u64,
}

/// Signs access tokens with the API's Ed25519 key.
pub struct TokenIssuer {
    encoding_key: EncodingKey,
    jwk: Jwk,
    lifetime: Duration,
}

impl TokenIssuer {
    /// Uses the key stored at `path`, generating it (mode 0600) on first start so tokens stay valid across API
    /// restarts.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        Self::from_signing_key(&key_file::load_or_create(path)?)
    }

    /// An issuer with a fresh in-memory key, for tests and throwaway servers.
    pub fn ephemeral() -> Result<Self, KeyError> {
        Self::from_signing_key(&SigningKey::from_bytes(&rand::random::<[u8; 32]>()))
    }

    fn from_signing_key(key: &SigningKey) -> Result<Self, KeyError> {
        let der = key.to_pkcs8_der().map_err(|e| KeyError::Signing(e.to_string()))?;
        Ok(Self {
            encoding_key: EncodingKey::from_ed_der(der.as_bytes()),
            jwk: public_jwk(key)?,
            lifetime: TOKEN_LIFETIME,
        })
    }

    /// Issues tokens valid for `lifetime` instead of [`TOKEN_LIFETIME`]. How long a revoked API key's streams
    /// keep working depends on it (docs/security.md, "Who can do what").
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Issues a token for `account` of `org`, also valid for the `granted` channels of other orgs.
    pub fn issue(&self, account: &str, org: &str, granted: Vec<String>) -> Result<IssuedToken, KeyError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let expires_at = now + self.lifetime.as_secs();
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: account.to_owned(),
            org: org.to_owned(),
            channels: granted,
            iat: now,
            exp: expires_at,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = self.jwk.common.key_id.clone();
        let token =
            jsonwebtoken::encode(&header, &claims, &self.encoding_key).map_err(|e| KeyError::Signing(e.to_string()))?;
        Ok(IssuedToken { token, expires_at })
    }

    /// The public key set to publish at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> JwkSet {
        JwkSet { keys: vec![self.jwk.clone()] }
    }

    /// A verifier for this issuer's tokens (for an API and relay in one process).
    pub fn verifier(&self) -> Result<TokenVerifier, KeyError> {
        TokenVerifier::from_jwks(&self.jwks())
    }
}

/// The public half as a JWK (RFC 8037 OKP), with its RFC 7638 thumbprint as `kid` so a rotated key gets a new id.
pub(crate) fn public_jwk(key: &SigningKey) -> Result<Jwk, KeyError> {
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
    let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|e| KeyError::Signing(e.to_string()))?;
    jwk.common.key_id = Some(kid);
    Ok(jwk)
}
