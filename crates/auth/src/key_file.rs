//! The signing keys on disk: one or more Ed25519 keys as PKCS#8 PEM `PRIVATE KEY` blocks, oldest first, in a file
//! of mode 0600. The last block signs; a file of one block (what every API wrote before rotation existed) is a
//! ring of one key.
//!
//! Each block is what `openssl pkey` reads and `openssl genpkey -algorithm ed25519` writes, so operators can
//! inspect or provision keys with standard tools. Every write goes to a temporary file in the same directory (mode 0600, fsynced) that is then renamed over
//! the key file, so an API or relay reading it at any moment sees the old ring or the new one, never half a file.
//! The first key is created the same way but only if no file is there yet, so two processes starting at once
//! cannot each write a different key and leave one of them issuing tokens nobody can verify. Rotating and retiring
//! read, change and write the file under a lock on its directory, so two operators at once cannot lose a key.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, DecodePrivateKey, EncodePrivateKey, KeypairBytes};
use ed25519_dalek::SigningKey;
use zeroize::Zeroizing;

use crate::key_ring::{KeyRing, RingError};
use crate::KeyError;

/// The PEM label of a PKCS#8 private key (RFC 7468, section 10).
const PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";

// The ring's file operations live here, by the file format, so that `key_ring` stays free of I/O.
impl KeyRing {
    /// Loads the ring at `path`, or creates a ring of one fresh key there (mode 0600) if the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        match Self::load(path) {
            Err(KeyError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => create(path),
            other => other,
        }
    }

    /// Loads an existing ring, refusing a file other users can read.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let io_err = |source| KeyError::Io { path: path.to_owned(), source };
        let mut file = File::open(path).map_err(io_err)?;
        // The mode of the file read, not of whatever the path names a moment later.
        check_private(path, &file)?;
        let mut text = Zeroizing::new(String::new());
        file.read_to_string(&mut text).map_err(io_err)?;
        parse(path, &text)
    }
}

/// Appends a fresh key to the ring at `path`, which must exist; the new key signs every token the API issues from
/// its next reload on. Returns the new ring (its [`KeyRing::signing_kid`] is the new key's id).
pub fn rotate_signing_key(path: &Path) -> Result<KeyRing, KeyError> {
    let _lock = lock_directory(path)?;
    let ring = KeyRing::load(path)?.rotated().map_err(|error| ring_error(path, error))?;
    replace(path, &ring)?;
    Ok(ring)
}

/// Removes the key `kid` from the ring at `path`. The newest key (the one that signs) and a kid the ring does not
/// hold are refused, naming the kids there are. Returns the ring as written.
pub fn retire_signing_key(path: &Path, kid: &str) -> Result<KeyRing, KeyError> {
    let _lock = lock_directory(path)?;
    let ring = KeyRing::load(path)?;
    let retired = ring.without(kid).map_err(|error| match error {
        RingError::UnknownKid(kid) => KeyError::UnknownKeyId { path: path.to_owned(), kid, known: owned(ring.kids()) },
        RingError::RetiringNewest(kid) => KeyError::RetiringSigningKey { path: path.to_owned(), kid },
        other => ring_error(path, other),
    })?;
    replace(path, &retired)?;
    Ok(retired)
}

fn owned(kids: Vec<&str>) -> Vec<String> {
    kids.into_iter().map(str::to_owned).collect()
}

/// Reads the PEM blocks of `text`, each an Ed25519 PKCS#8 private key.
fn parse(path: &Path, text: &str) -> Result<KeyRing, KeyError> {
    let invalid = |reason: String| KeyError::InvalidKeyFile { path: path.to_owned(), reason };
    let blocks = pem::parse_many(text).map_err(|error| invalid(format!("it is not PEM: {error}")))?;
    // The PEM parser skips a block that never ends (a file cut short by hand), which would drop its key unseen.
    if text.matches("-----BEGIN ").count() != blocks.len() {
        return Err(invalid("a PEM block is not closed by its -----END line".to_owned()));
    }
    let mut keys = Vec::with_capacity(blocks.len());
    for (number, block) in (1..).zip(&blocks) {
        if block.tag() != PRIVATE_KEY_LABEL {
            return Err(invalid(format!("block {number} is a {}, not a PKCS#8 {PRIVATE_KEY_LABEL}", block.tag())));
        }
        let key = SigningKey::from_pkcs8_der(block.contents())
            .map_err(|error| invalid(format!("block {number} is not an Ed25519 key: {error}")))?;
        keys.push(key);
    }
    KeyRing::from_keys(keys).map_err(|error| ring_error(path, error))
}

fn ring_error(path: &Path, error: RingError) -> KeyError {
    match error {
        RingError::Thumbprint(reason) => KeyError::Signing(reason),
        other => KeyError::InvalidKeyFile { path: path.to_owned(), reason: other.to_string() },
    }
}

/// The ring as PEM blocks, oldest first, each a PKCS#8 v1 key (RFC 8410 without the optional public key), which
/// is what `openssl genpkey -algorithm ed25519` writes: OpenSSL 3.0 refuses the v2 form `SigningKey::to_pkcs8_pem`
/// writes (and API key files written before rings existed have), which this crate still reads.
fn format(path: &Path, ring: &KeyRing) -> Result<Zeroizing<String>, KeyError> {
    let mut text = Zeroizing::new(String::new());
    for key in ring.signing_keys() {
        let v1 = KeypairBytes { secret_key: key.to_bytes(), public_key: None };
        let block = v1
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|error| KeyError::InvalidKeyFile { path: path.to_owned(), reason: error.to_string() })?;
        text.push_str(&block);
    }
    Ok(text)
}

/// Writes a ring of one fresh key at `path` unless a file is there already, in which case that file's ring is used
/// (another process created it first).
fn create(path: &Path) -> Result<KeyRing, KeyError> {
    let io_err = |source| KeyError::Io { path: path.to_owned(), source };
    std::fs::create_dir_all(directory_of(path)).map_err(io_err)?;
    let ring = KeyRing::generate()?;
    let temp = written_temp_file(path, &format(path, &ring)?)?;
    match temp.persist_noclobber(path) {
        Ok(_) => sync_directory(path).map(|()| ring),
        Err(error) if error.error.kind() == ErrorKind::AlreadyExists => KeyRing::load(path),
        Err(error) => Err(io_err(error.error)),
    }
}

/// Replaces the file at `path` with `ring`, atomically.
fn replace(path: &Path, ring: &KeyRing) -> Result<(), KeyError> {
    let temp = written_temp_file(path, &format(path, ring)?)?;
    temp.persist(path).map_err(|error| KeyError::Io { path: path.to_owned(), source: error.error })?;
    sync_directory(path)
}

/// A temporary file beside `path` (mode 0600, as `tempfile` creates them) holding `text`, flushed to disk; removed
/// again if it is dropped before being renamed.
fn written_temp_file(path: &Path, text: &str) -> Result<tempfile::NamedTempFile, KeyError> {
    let io_err = |source| KeyError::Io { path: path.to_owned(), source };
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(directory_of(path))
        .map_err(io_err)?;
    temp.write_all(text.as_bytes()).map_err(io_err)?;
    temp.as_file().sync_all().map_err(io_err)?;
    Ok(temp)
}

/// The directory holding `path` (`.` for a bare file name).
fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Makes a rename in the key file's directory durable: without it, a crash could bring back the previous ring.
#[cfg(unix)]
fn sync_directory(path: &Path) -> Result<(), KeyError> {
    let dir = directory_of(path);
    File::open(&dir).and_then(|dir| dir.sync_all()).map_err(|source| KeyError::Io { path: dir, source })
}

#[cfg(not(unix))]
fn sync_directory(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}

/// Holds an exclusive lock on the key file's directory until dropped; waits for another holder to finish. The
/// directory rather than the file: every write replaces the file, so a lock on it would lock a file that is gone.
#[cfg(unix)]
fn lock_directory(path: &Path) -> Result<File, KeyError> {
    let dir = directory_of(path);
    let handle = File::open(&dir).map_err(|source| KeyError::Io { path: dir.clone(), source })?;
    handle.lock().map_err(|source| KeyError::Io { path: dir, source })?;
    Ok(handle)
}

/// Directories cannot be opened as files here; two concurrent rotations are then the operator's to avoid.
#[cfg(not(unix))]
fn lock_directory(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}

#[cfg(unix)]
fn check_private(path: &Path, file: &File) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = file.metadata().map_err(|source| KeyError::Io { path: path.to_owned(), source })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::InsecurePermissions { path: path.to_owned(), mode });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _file: &File) -> Result<(), KeyError> {
    Ok(())
}
