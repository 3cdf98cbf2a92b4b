//! The client's long-term signing identity, kept in `data_dir/identity.key`.
//!
//! The Ed25519 key is generated once per data_dir and never leaves it: every MLS group this client is in binds
//! the public key to the identity bytes, so a new key would make the stored groups unusable. The file therefore
//! also records the identity it belongs to, and opening a data_dir with another identity is refused instead of
//! silently mixing two agents' state. The file is created with mode 0600 and written via a temporary file and a
//! rename, so a crash never leaves a half-written key behind.

use std::fs;
use std::io::Write;
use std::path::Path;

use mls_rs::crypto::{SignaturePublicKey, SignatureSecretKey};
use mls_rs::{CipherSuite, CipherSuiteProvider, CryptoProvider};
use mls_rs_crypto_rustcrypto::RustCryptoProvider;

use skytale_proto::meta;

use crate::error::Error;

const KEY_FILE: &str = "identity.key";

/// MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, the one ciphersuite of every channel. It lives with the
/// identity because the stored signing key is a key of this suite (Ed25519).
pub(crate) const CIPHER_SUITE: CipherSuite = CipherSuite::CURVE25519_AES128;

/// The identity bytes with their signing key pair.
#[derive(Clone)]
pub(crate) struct SigningKey {
    pub identity: Vec<u8>,
    pub public: SignaturePublicKey,
    pub secret: SignatureSecretKey,
}

/// Proves to the relay that a stream is opened by the holder of this client's MLS signing key: the relay lets a
/// stream write and read a channel only while that key is a member of the channel's group (docs/protocol.md,
/// "Membership").
pub(crate) struct MemberProver {
    public_hex: String,
    secret: SignatureSecretKey,
}

impl MemberProver {
    pub(crate) fn new(key: &SigningKey) -> Self {
        Self { public_hex: hex::encode(key.public.as_bytes()), secret: key.secret.clone() }
    }

    /// The `skytale-member-key` and `skytale-member-proof` header values for a stream opened with `token` (empty
    /// without credentials).
    pub(crate) fn headers(&self, token: &str) -> Result<[(&'static str, String); 2], Error> {
        let provider = RustCryptoProvider::new()
            .cipher_suite_provider(CIPHER_SUITE)
            .ok_or_else(|| Error::Mls(format!("cipher suite {CIPHER_SUITE:?} is not available")))?;
        let proof = provider
            .sign(&self.secret, &meta::member_proof_message(token))
            .map_err(|e| Error::Mls(format!("cannot sign the stream's member proof: {e}")))?;
        Ok([(meta::MEMBER_KEY, self.public_hex.clone()), (meta::MEMBER_PROOF, hex::encode(proof))])
    }
}

/// Loads the signing key of `data_dir`, generating and storing it on first use.
pub(crate) fn load_or_create(data_dir: &Path, identity: &[u8]) -> Result<SigningKey, Error> {
    let path = data_dir.join(KEY_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let key = parse(&text).map_err(|why| {
                Error::DataDir(format!(
                    "{} is corrupt: {why}; without it this data_dir's channels cannot be used (restore it from a \
                     backup, or start over with an empty data_dir)",
                    path.display()
                ))
            })?;
            if key.identity != identity {
                return Err(Error::DataDir(format!(
                    "{} belongs to identity {}, not {}: each identity needs its own data_dir (pass another \
                     data_dir, or SKYTALE_DATA_DIR)",
                    data_dir.display(),
                    describe_identity(&key.identity),
                    describe_identity(identity)
                )));
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = generate(identity)?;
            write_private(data_dir, &path, &render(&key))?;
            Ok(key)
        }
        Err(e) => Err(Error::DataDir(format!("cannot read {}: {e}", path.display()))),
    }
}

/// An identity as a user wrote it: quoted text when it is printable UTF-8, else hex.
fn describe_identity(identity: &[u8]) -> String {
    match std::str::from_utf8(identity) {
        Ok(text) if !text.chars().any(char::is_control) => format!("{text:?}"),
        _ => format!("0x{}", hex::encode(identity)),
    }
}

pub(crate) fn generate(identity: &[u8]) -> Result<SigningKey, Error> {
    let provider = RustCryptoProvider::new()
        .cipher_suite_provider(CIPHER_SUITE)
        .ok_or_else(|| Error::Mls(format!("cipher suite {CIPHER_SUITE:?} is not available")))?;
    let (secret, public) =
        provider.signature_key_generate().map_err(|e| Error::Mls(format!("cannot generate a signing key: {e}")))?;
    Ok(SigningKey { identity: identity.to_vec(), public, secret })
}

/// `identity`, `public` and `secret` lines, each `<field> <hex>`.
fn render(key: &SigningKey) -> String {
    format!(
        "identity {}\npublic {}\nsecret {}\n",
        hex::encode(&key.identity),
        hex::encode(key.public.as_bytes()),
        hex::encode(key.secret.as_bytes())
    )
}

fn parse(text: &str) -> Result<SigningKey, String> {
    let mut identity = None;
    let mut public = None;
    let mut secret = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (field, value) = line.split_once(' ').ok_or_else(|| format!("malformed line {line:?}"))?;
        let bytes = hex::decode(value.trim()).map_err(|e| format!("field {field}: {e}"))?;
        match field {
            "identity" => identity = Some(bytes),
            "public" => public = Some(bytes),
            "secret" => secret = Some(bytes),
            other => return Err(format!("unknown field {other:?}")),
        }
    }
    Ok(SigningKey {
        identity: identity.ok_or("missing identity")?,
        public: SignaturePublicKey::new(public.ok_or("missing public key")?),
        secret: SignatureSecretKey::new(secret.ok_or("missing secret key")?),
    })
}

fn write_private(dir: &Path, path: &Path, contents: &str) -> Result<(), Error> {
    let tmp = dir.join(format!("{KEY_FILE}.tmp"));
    let io = |e: std::io::Error| Error::DataDir(format!("cannot write {}: {e}", path.display()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), b"agent-a").unwrap();
        let again = load_or_create(dir.path(), b"agent-a").unwrap();
        assert_eq!(first.secret.as_bytes(), again.secret.as_bytes());
        assert_eq!(first.public.as_bytes(), again.public.as_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn other_identity_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create(dir.path(), b"agent-a").unwrap();
        let err = load_or_create(dir.path(), b"agent-b").err().unwrap();
        assert!(matches!(err, Error::DataDir(_)), "{err}");
        let expected = format!(
            "data_dir error: {} belongs to identity \"agent-a\", not \"agent-b\": each identity needs its own data_dir",
            dir.path().display()
        );
        assert!(err.to_string().starts_with(&expected), "{err}");
        let binary = load_or_create(dir.path(), &[0, 0xff]).err().unwrap();
        assert!(binary.to_string().contains("not 0x00ff:"), "{binary}");
    }

    #[test]
    fn corrupt_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), "identity zz\n").unwrap();
        let err = load_or_create(dir.path(), b"agent-a").err().unwrap();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }
}
