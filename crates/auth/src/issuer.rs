//! Minting tokens (API side).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::{Claims, KeyError, KeyRing, TokenVerifier, AUDIENCE, ISSUER, TOKEN_LIFETIME};

/// A freshly issued token and when it stops being valid.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    /// The compact JWT.
    pub token: String,
    /// Unix seconds after which the relay refuses it.
    pub expires_at: u64,
}

/// Signs access tokens with the newest key of the API's [`KeyRing`], and publishes every key of it.
pub struct TokenIssuer {
    encoding_key: EncodingKey,
    kid: String,
    jwks: JwkSet,
    lifetime: Duration,
}

impl TokenIssuer {
    /// Uses the keys stored at `path`, generating one (mode 0600) on first start so tokens stay valid across API
    /// restarts.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        Self::from_ring(&KeyRing::load_or_create(path)?)
    }

    /// An issuer with a fresh in-memory key, for tests and throwaway servers.
    pub fn ephemeral() -> Result<Self, KeyError> {
        Self::from_ring(&KeyRing::generate()?)
    }

    /// Signs with the ring's newest key and publishes all of its keys.
    pub fn from_ring(ring: &KeyRing) -> Result<Self, KeyError> {
        let der = ring.signing_key().to_pkcs8_der().map_err(|e| KeyError::Signing(e.to_string()))?;
        Ok(Self {
            encoding_key: EncodingKey::from_ed_der(der.as_bytes()),
            kid: ring.signing_kid().to_owned(),
            jwks: ring.jwks(),
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
        header.kid = Some(self.kid.clone());
        let token =
            jsonwebtoken::encode(&header, &claims, &self.encoding_key).map_err(|e| KeyError::Signing(e.to_string()))?;
        Ok(IssuedToken { token, expires_at })
    }

    /// The id of the key tokens are signed with (the ring's newest).
    pub fn signing_kid(&self) -> &str {
        &self.kid
    }

    /// The public key set to publish at `/.well-known/jwks.json`: every key of the ring, oldest first.
    pub fn jwks(&self) -> JwkSet {
        self.jwks.clone()
    }

    /// A verifier for this issuer's tokens (for an API and relay in one process).
    pub fn verifier(&self) -> Result<TokenVerifier, KeyError> {
        TokenVerifier::from_jwks(&self.jwks)
    }
}
