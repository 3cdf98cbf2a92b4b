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

/// Loads the signing key of `data_dir`, generating and storing it on first use.
pub(crate) fn load_or_create(data_dir: &Path, identity: &[u8]) -> Result<SigningKey, Error> {
    let path = data_dir.join(KEY_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let key = parse(&text).map_err(|why| Error::Runtime(format!("{} is corrupt: {why}", path.display())))?;
            if key.identity != identity {
                return Err(Error::Runtime(format!(
                    "data_dir {} belongs to identity {}, not {}",
                    data_dir.display(),
                    hex::encode(&key.identity),
                    hex::encode(identity)
                )));
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = generate(identity)?;
            write_private(data_dir, &path, &render(&key))?;
            Ok(key)
        }
        Err(e) => Err(Error::Runtime(format!("cannot read {}: {e}", path.display()))),
    }
}

fn generate(identity: &[u8]) -> Result<SigningKey, Error> {
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
    let io = |e: std::io::Error| Error::Runtime(format!("cannot write {}: {e}", path.display()));
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
        assert!(matches!(err, Error::Runtime(_)), "{err}");
        assert!(err.to_string().contains("belongs to identity"), "{err}");
    }

    #[test]
    fn corrupt_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), "identity zz\n").unwrap();
        let err = load_or_create(dir.path(), b"agent-a").err().unwrap();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }
}
