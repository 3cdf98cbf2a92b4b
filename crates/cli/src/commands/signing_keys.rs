//! `skytale keys rotate-signing-key|retire-signing-key`: changing the API's signing-key ring on disk
//! (docs/operations.md, "Signing-key rotation"). The running API and the relays that read the same file notice the
//! change within seconds; relays following the JWKS learn a new key from the first token it signed, and forget a
//! retired one at their next fetch.
//!
//! stdout: `rotate-signing-key` prints the new key's id alone on its first line (for scripts), then shell comments
//! saying what to do next; `retire-signing-key` prints comments only.

use std::path::PathBuf;

use skytale_api::SIGNING_KEY_FILE;
use skytale_auth::{retire_signing_key, rotate_signing_key, CLOCK_LEEWAY_SECS, KEY_FILE_POLL_INTERVAL};

use super::{api_data_dir, CommandError};
use crate::announce;
use crate::args::KeyFileArgs;

/// Appends a key to the ring and says when the older keys may be retired.
pub fn rotate(key_file: KeyFileArgs) -> Result<(), CommandError> {
    let path = existing_key_file(key_file)?;
    let ring = rotate_signing_key(&path).map_err(CommandError::SigningKeys)?;
    let new_kid = ring.signing_kid();
    let stdout = |result: std::io::Result<()>| result.map_err(CommandError::Stdout);
    stdout(announce::line(new_kid))?;
    stdout(announce::comment(&format!(
        "signing key {new_kid} added to {}: the API signs with it within {} s (at once on SIGHUP); relays learn it \
         from the first token it signed",
        path.display(),
        KEY_FILE_POLL_INTERVAL.as_secs()
    )))?;
    let older: Vec<&str> = ring.kids().into_iter().filter(|kid| *kid != new_kid).collect();
    stdout(announce::comment(&format!(
        "retire the older keys only once every token they signed has expired: the API's --token-lifetime (15m by \
         default) plus {CLOCK_LEEWAY_SECS} s from now; until then their tokens still verify"
    )))?;
    for kid in older {
        stdout(announce::comment(&format!("  skytale keys retire-signing-key {kid} --key-file {}", path.display())))?;
    }
    Ok(())
}

/// Removes one old key from the ring.
pub fn retire(kid: &str, key_file: KeyFileArgs) -> Result<(), CommandError> {
    let path = existing_key_file(key_file)?;
    let ring = retire_signing_key(&path, kid).map_err(CommandError::SigningKeys)?;
    announce::comment(&format!(
        "signing key {kid} retired from {}; keys left, oldest first: {}. The API stops publishing it within {} s (at \
         once on SIGHUP); relays refuse its tokens from their next key fetch (--jwks-refresh-interval, or SIGHUP) or \
         key-file read",
        path.display(),
        ring.kids().join(" "),
        KEY_FILE_POLL_INTERVAL.as_secs()
    ))
    .map_err(CommandError::Stdout)
}

/// `--key-file`, else `DATA_DIR/api-signing-key.pem`; it must exist: a ring written where no API reads it would
/// look rotated and change nothing.
fn existing_key_file(key_file: KeyFileArgs) -> Result<PathBuf, CommandError> {
    let path = match key_file.key_file {
        Some(path) => path,
        None => api_data_dir(key_file.data_dir)?.join(SIGNING_KEY_FILE),
    };
    if !path.exists() {
        return Err(CommandError::NoSigningKeyFile(path));
    }
    Ok(path)
}
