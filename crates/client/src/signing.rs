//! The MLS crypto provider: mls-rs-crypto-rustcrypto, with the client's Ed25519 signing key built once.
//!
//! The rustcrypto provider receives the secret key as bytes (seed || public, 64 bytes) and rebuilds the
//! ed25519-dalek `SigningKey` for every signature: it derives the public key from the seed (a base-point scalar
//! multiplication) and decompresses the stored one to check they match. That made an MLS signature cost
//! ~2.5x a plain `SigningKey::sign`, and every application message is signed once by its sender. The client
//! signs with one fixed key per identity (messages, commits, key packages, leaf updates), so
//! [`CachedKeyProvider`] builds that key once and signs with it; any other secret key goes to the inner
//! provider. Ed25519 is deterministic, so the signatures are byte-identical. Everything else is delegated
//! unchanged.

use std::sync::Arc;

use ed25519_dalek::Signer;
use mls_rs_core::crypto::{
    CipherSuite, CipherSuiteProvider, CryptoProvider, HpkeCiphertext, HpkePsk, HpkePublicKey, HpkeSecretKey,
    SignaturePublicKey, SignatureSecretKey,
};
use mls_rs_crypto_rustcrypto::{RustCryptoError, RustCryptoProvider};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

type InnerSuite = <RustCryptoProvider as CryptoProvider>::CipherSuiteProvider;

/// The Ed25519 cipher suites, whose signature secret key is the 64-byte ed25519-dalek key pair.
const ED25519_SUITES: [CipherSuite; 2] = [CipherSuite::CURVE25519_AES128, CipherSuite::CURVE25519_CHACHA];

/// [`RustCryptoProvider`] that signs with a prebuilt key for the client's own secret key.
#[derive(Clone)]
pub(crate) struct CachedKeyProvider {
    inner: RustCryptoProvider,
    /// `None` when the identity's secret key is not an Ed25519 key pair: then every signature is the inner one's.
    own_key: Option<Arc<CachedKey>>,
}

impl CachedKeyProvider {
    /// The provider for a client whose signature secret key is `secret` (ed25519-dalek key pair bytes).
    pub(crate) fn new(secret: &SignatureSecretKey) -> Self {
        let own_key = <&[u8; ed25519_dalek::KEYPAIR_LENGTH]>::try_from(secret.as_bytes())
            .ok()
            .and_then(|bytes| ed25519_dalek::SigningKey::from_keypair_bytes(bytes).ok())
            .map(|key| Arc::new(CachedKey { keypair: Zeroizing::new(key.to_keypair_bytes()), key }));
        Self { inner: RustCryptoProvider::new(), own_key }
    }
}

impl CryptoProvider for CachedKeyProvider {
    type CipherSuiteProvider = CachedKeySuite;

    fn supported_cipher_suites(&self) -> Vec<CipherSuite> {
        self.inner.supported_cipher_suites()
    }

    fn cipher_suite_provider(&self, cipher_suite: CipherSuite) -> Option<CachedKeySuite> {
        let inner = self.inner.cipher_suite_provider(cipher_suite)?;
        let own_key = self.own_key.clone().filter(|_| ED25519_SUITES.contains(&cipher_suite));
        Some(CachedKeySuite { inner, own_key })
    }
}

/// A built signing key with the key pair bytes it was built from (the form mls-rs hands to `sign`).
struct CachedKey {
    keypair: Zeroizing<[u8; ed25519_dalek::KEYPAIR_LENGTH]>,
    /// Zeroizes its secret on drop (ed25519-dalek `zeroize` feature).
    key: ed25519_dalek::SigningKey,
}

impl CachedKey {
    /// Whether `secret` is this key (constant time: both sides are secret).
    fn is(&self, secret: &SignatureSecretKey) -> bool {
        secret.as_bytes().ct_eq(self.keypair.as_slice()).into()
    }
}

/// The inner cipher suite, except that `sign` with the client's own key uses the prebuilt key.
#[derive(Clone)]
pub(crate) struct CachedKeySuite {
    inner: InnerSuite,
    own_key: Option<Arc<CachedKey>>,
}

impl CipherSuiteProvider for CachedKeySuite {
    type Error = RustCryptoError;
    type HpkeContextS = <InnerSuite as CipherSuiteProvider>::HpkeContextS;
    type HpkeContextR = <InnerSuite as CipherSuiteProvider>::HpkeContextR;

    fn sign(&self, secret_key: &SignatureSecretKey, data: &[u8]) -> Result<Vec<u8>, Self::Error> {
        match &self.own_key {
            Some(own) if own.is(secret_key) => Ok(own.key.sign(data).to_bytes().to_vec()),
            _ => self.inner.sign(secret_key, data),
        }
    }

    fn cipher_suite(&self) -> CipherSuite {
        self.inner.cipher_suite()
    }

    fn hash(&self, data: &[u8]) -> Result<Vec<u8>, Self::Error> {
        self.inner.hash(data)
    }

    fn mac(&self, key: &[u8], data: &[u8]) -> Result<Vec<u8>, Self::Error> {
        self.inner.mac(key, data)
    }

    fn aead_seal(&self, key: &[u8], data: &[u8], aad: Option<&[u8]>, nonce: &[u8]) -> Result<Vec<u8>, Self::Error> {
        self.inner.aead_seal(key, data, aad, nonce)
    }

    fn aead_open(
        &self,
        key: &[u8],
        ciphertext: &[u8],
        aad: Option<&[u8]>,
        nonce: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Self::Error> {
        self.inner.aead_open(key, ciphertext, aad, nonce)
    }

    fn aead_key_size(&self) -> usize {
        self.inner.aead_key_size()
    }

    fn aead_nonce_size(&self) -> usize {
        self.inner.aead_nonce_size()
    }

    fn kdf_extract(&self, salt: &[u8], ikm: &[u8]) -> Result<Zeroizing<Vec<u8>>, Self::Error> {
        self.inner.kdf_extract(salt, ikm)
    }

    fn kdf_expand(&self, prk: &[u8], info: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>, Self::Error> {
        self.inner.kdf_expand(prk, info, len)
    }

    fn kdf_extract_size(&self) -> usize {
        self.inner.kdf_extract_size()
    }

    fn hpke_seal(
        &self,
        remote_key: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
        pt: &[u8],
    ) -> Result<HpkeCiphertext, Self::Error> {
        self.inner.hpke_seal(remote_key, info, aad, pt)
    }

    fn hpke_seal_psk(
        &self,
        remote_key: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
        pt: &[u8],
        psk: HpkePsk<'_>,
    ) -> Result<HpkeCiphertext, Self::Error> {
        self.inner.hpke_seal_psk(remote_key, info, aad, pt, psk)
    }

    fn hpke_open(
        &self,
        ciphertext: &HpkeCiphertext,
        local_secret: &HpkeSecretKey,
        local_public: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
    ) -> Result<Zeroizing<Vec<u8>>, Self::Error> {
        self.inner.hpke_open(ciphertext, local_secret, local_public, info, aad)
    }

    fn hpke_open_psk(
        &self,
        ciphertext: &HpkeCiphertext,
        local_secret: &HpkeSecretKey,
        local_public: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
        psk: HpkePsk<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, Self::Error> {
        self.inner.hpke_open_psk(ciphertext, local_secret, local_public, info, aad, psk)
    }

    fn hpke_setup_s(
        &self,
        remote_key: &HpkePublicKey,
        info: &[u8],
    ) -> Result<(Vec<u8>, Self::HpkeContextS), Self::Error> {
        self.inner.hpke_setup_s(remote_key, info)
    }

    fn hpke_setup_r(
        &self,
        enc: &[u8],
        local_secret: &HpkeSecretKey,
        local_public: &HpkePublicKey,
        info: &[u8],
    ) -> Result<Self::HpkeContextR, Self::Error> {
        self.inner.hpke_setup_r(enc, local_secret, local_public, info)
    }

    fn kem_derive(&self, ikm: &[u8]) -> Result<(HpkeSecretKey, HpkePublicKey), Self::Error> {
        self.inner.kem_derive(ikm)
    }

    fn kem_generate(&self) -> Result<(HpkeSecretKey, HpkePublicKey), Self::Error> {
        self.inner.kem_generate()
    }

    fn kem_public_key_validate(&self, key: &HpkePublicKey) -> Result<(), Self::Error> {
        self.inner.kem_public_key_validate(key)
    }

    fn random_bytes(&self, out: &mut [u8]) -> Result<(), Self::Error> {
        CipherSuiteProvider::random_bytes(&self.inner, out)
    }

    fn random_bytes_vec(&self, count: usize) -> Result<Vec<u8>, Self::Error> {
        self.inner.random_bytes_vec(count)
    }

    fn signature_key_generate(&self) -> Result<(SignatureSecretKey, SignaturePublicKey), Self::Error> {
        self.inner.signature_key_generate()
    }

    fn signature_key_derive_public(&self, secret_key: &SignatureSecretKey) -> Result<SignaturePublicKey, Self::Error> {
        self.inner.signature_key_derive_public(secret_key)
    }

    fn verify(&self, public_key: &SignaturePublicKey, signature: &[u8], data: &[u8]) -> Result<(), Self::Error> {
        self.inner.verify(public_key, signature, data)
    }
}

#[cfg(test)]
mod tests {
    use rand::RngCore;

    use super::*;

    fn inner_suite() -> InnerSuite {
        RustCryptoProvider::new().cipher_suite_provider(CipherSuite::CURVE25519_AES128).unwrap()
    }

    #[test]
    fn signatures_are_byte_identical_to_the_inner_provider() {
        let inner = inner_suite();
        let mut rng = rand::rng();
        for _ in 0..20 {
            let (secret, public) = inner.signature_key_generate().unwrap();
            for suite in ED25519_SUITES {
                let cached = CachedKeyProvider::new(&secret).cipher_suite_provider(suite).unwrap();
                assert!(cached.own_key.is_some(), "the key pair was not cached");
                for len in [0, 1, 100, 4096] {
                    let mut data = vec![0u8; len];
                    rng.fill_bytes(&mut data);
                    let signature = cached.sign(&secret, &data).unwrap();
                    assert_eq!(signature, inner.sign(&secret, &data).unwrap());
                    inner.verify(&public, &signature, &data).unwrap();
                }
            }
        }
    }

    #[test]
    fn another_key_is_signed_by_the_inner_provider() {
        let inner = inner_suite();
        let (own, _) = inner.signature_key_generate().unwrap();
        let (other, other_public) = inner.signature_key_generate().unwrap();
        let cached = CachedKeyProvider::new(&own).cipher_suite_provider(CipherSuite::CURVE25519_AES128).unwrap();
        let signature = cached.sign(&other, b"data").unwrap();
        assert_eq!(signature, inner.sign(&other, b"data").unwrap());
        inner.verify(&other_public, &signature, b"data").unwrap();
    }

    #[test]
    fn a_malformed_secret_key_fails_like_the_inner_provider() {
        let inner = inner_suite();
        let (own, _) = inner.signature_key_generate().unwrap();
        let cached = CachedKeyProvider::new(&own).cipher_suite_provider(CipherSuite::CURVE25519_AES128).unwrap();
        for bad in [vec![], vec![7u8; 32], vec![7u8; 64]] {
            let bad = SignatureSecretKey::new(bad);
            let (ours, theirs) = (cached.sign(&bad, b"data"), inner.sign(&bad, b"data"));
            assert!(ours.is_err() && theirs.is_err());
            assert_eq!(ours.unwrap_err().to_string(), theirs.unwrap_err().to_string());
        }
    }

    #[test]
    fn a_non_ed25519_suite_keeps_the_inner_signer() {
        let (own, _) = inner_suite().signature_key_generate().unwrap();
        let p256 = CachedKeyProvider::new(&own).cipher_suite_provider(CipherSuite::P256_AES128).unwrap();
        assert!(p256.own_key.is_none());
        let (secret, public) = p256.signature_key_generate().unwrap();
        let signature = p256.sign(&secret, b"data").unwrap();
        p256.verify(&public, &signature, b"data").unwrap();
    }

    #[test]
    fn a_secret_that_is_not_an_ed25519_key_pair_is_not_cached() {
        assert!(CachedKeyProvider::new(&SignatureSecretKey::new(vec![1u8; 64])).own_key.is_none());
        assert!(CachedKeyProvider::new(&SignatureSecretKey::new(vec![1u8; 32])).own_key.is_none());
    }
}
