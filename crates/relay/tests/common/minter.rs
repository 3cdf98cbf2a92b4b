//! Tokens for tests against a relay with JWT auth: signed with a real API signing key the relay trusts.
#![allow(dead_code)] // each test binary uses a different subset

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use skytale_auth::{Claims, TokenIssuer};
use skytale_relay::{RelayAuth, RelayConfig, RelayHandle};
use tempfile::TempDir;

/// Signs arbitrary claims with an API signing key the relay trusts.
pub struct Minter {
    pub issuer: TokenIssuer,
    key: EncodingKey,
    _dir: TempDir,
}

impl Minter {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.pem");
        let issuer = TokenIssuer::load_or_create(&path).unwrap();
        let pem = std::fs::read_to_string(&path).unwrap();
        let der = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).unwrap().to_pkcs8_der().unwrap();
        Self { issuer, key: EncodingKey::from_ed_der(der.as_bytes()), _dir: dir }
    }

    /// A normal token, as the API issues it.
    pub fn token(&self, account: &str, org: &str, granted: &[&str]) -> String {
        let granted = granted.iter().map(|c| c.to_string()).collect();
        self.issuer.issue(account, org, granted).unwrap().token
    }

    /// A token whose `exp` is `exp`, otherwise like [`Minter::token`].
    pub fn token_expiring_at(&self, account: &str, org: &str, exp: u64) -> String {
        let claims = Claims {
            iss: skytale_auth::ISSUER.into(),
            aud: skytale_auth::AUDIENCE.into(),
            sub: account.into(),
            org: org.into(),
            channels: vec![],
            iat: exp.saturating_sub(900),
            exp,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = self.issuer.jwks().keys[0].common.key_id.clone();
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }

    pub async fn relay(&self, dir: &TempDir) -> RelayHandle {
        self.relay_with(dir, |_| {}).await
    }

    /// A relay trusting this minter's tokens, with `configure` applied to its configuration.
    pub async fn relay_with(&self, dir: &TempDir, configure: impl FnOnce(&mut RelayConfig)) -> RelayHandle {
        let mut config = super::common::config(dir.path());
        config.auth = RelayAuth::jwt(self.issuer.verifier().unwrap());
        configure(&mut config);
        super::common::start(config).await
    }
}
