//! The API key `skytale dev` prints: created once per org, then kept in the dev directory so every start prints
//! the same key and agents configured with it keep working across restarts.
//!
//! The API stores only a hash of each key, so the secret itself must be kept here, in a file only its owner can
//! read (like the API's signing key next to it).

use std::fs::{DirBuilder, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use skytale_api::{create_account_with_key, AdminError, Storage, API_KEY_PREFIX};

/// Name of the dev account created in the org.
const DEV_ACCOUNT: &str = "dev";

/// Why the dev key could not be read or created.
#[derive(Debug, thiserror::Error)]
pub enum DevKeyError {
    #[error("dev API key file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("dev API key file {path} is accessible by other users (mode {mode:o}); expected 0600")]
    InsecurePermissions { path: PathBuf, mode: u32 },
    #[error("dev API key file {path} does not hold an API key ({API_KEY_PREFIX}...); delete it to get a new key")]
    NotAKey { path: PathBuf },
    #[error("cannot create the dev account: {0}")]
    Create(#[from] AdminError),
}

/// Where the dev key of `org` is kept: `DIR/api-keys/ORG.key` (`org` is a validated name component, no `/`).
pub fn path_for(dir: &Path, org: &str) -> PathBuf {
    dir.join("api-keys").join(format!("{org}.key"))
}

/// The dev key of `org`: the stored one, or a new account and key in `storage`, stored at [`path_for`].
pub async fn load_or_create(dir: &Path, org: &str, storage: &Storage) -> Result<String, DevKeyError> {
    let path = path_for(dir, org);
    match read(&path) {
        Err(DevKeyError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {}
        stored => return stored,
    }
    let key = create_account_with_key(storage, org, DEV_ACCOUNT).await?;
    tracing::info!(org, key_id = %key.key_id, account = %key.account.id, "created the dev account and API key");
    write(&path, &key.secret)?;
    Ok(key.secret)
}

fn read(path: &Path) -> Result<String, DevKeyError> {
    let io_error = |source| DevKeyError::Io { path: path.to_owned(), source };
    let text = std::fs::read_to_string(path).map_err(io_error)?;
    check_private(path)?;
    let key = text.trim();
    if !key.starts_with(API_KEY_PREFIX) {
        return Err(DevKeyError::NotAKey { path: path.to_owned() });
    }
    Ok(key.to_owned())
}

/// Writes the key to a new file with mode 0600, in a directory only the owner can enter.
fn write(path: &Path, secret: &str) -> Result<(), DevKeyError> {
    let io_error = |source| DevKeyError::Io { path: path.to_owned(), source };
    if let Some(parent) = path.parent() {
        let mut builder = DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(parent).map_err(io_error)?;
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io_error)?;
    file.write_all(format!("{secret}\n").as_bytes()).and_then(|()| file.sync_all()).map_err(io_error)
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), DevKeyError> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(path).map_err(|source| DevKeyError::Io { path: path.to_owned(), source })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(DevKeyError::InsecurePermissions { path: path.to_owned(), mode });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), DevKeyError> {
    Ok(())
}
