//! The signing key on disk: one Ed25519 key as PKCS#8 PEM, created with mode 0600.
//!
//! PKCS#8 PEM is what `openssl` reads and writes, so operators can inspect or provision the key with standard
//! tools. The file is created atomically (`create_new`) so two processes starting at once cannot each write a
//! different key and leave one of them issuing tokens nobody can verify.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::Path;

use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::SigningKey;

use crate::KeyError;

/// Loads the key at `path`, or generates one there if the file does not exist.
pub(crate) fn load_or_create(path: &Path) -> Result<SigningKey, KeyError> {
    match load(path) {
        Err(KeyError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => create(path),
        other => other,
    }
}

/// Loads an existing key, refusing files other users can read.
pub(crate) fn load(path: &Path) -> Result<SigningKey, KeyError> {
    let io_err = |source| KeyError::Io { path: path.to_owned(), source };
    let pem = std::fs::read_to_string(path).map_err(io_err)?;
    check_private(path)?;
    SigningKey::from_pkcs8_pem(&pem)
        .map_err(|e| KeyError::InvalidKeyFile { path: path.to_owned(), reason: e.to_string() })
}

fn create(path: &Path) -> Result<SigningKey, KeyError> {
    let io_err = |source| KeyError::Io { path: path.to_owned(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_err)?;
    }
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::InvalidKeyFile { path: path.to_owned(), reason: e.to_string() })?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(pem.as_bytes()).map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
            Ok(key)
        }
        // Another process created it between our read and our create: use theirs.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => load(path),
        Err(e) => Err(io_err(e)),
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| KeyError::Io { path: path.to_owned(), source })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::InsecurePermissions { path: path.to_owned(), mode });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}
