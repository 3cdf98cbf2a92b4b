//! The keys a relay with JWT auth trusts, and how it learns them again when the API rotates its signing keys
//! (docs/operations.md, "Signing-key rotation").
//!
//! The API signs with the newest key of its ring and publishes all of them, so a relay must learn a new key before
//! (or as) the first token signed by it arrives, and forget a retired one. From the JWKS URL it fetches the set
//! again when a token names a key it does not know (at most once per [`JwksFollow::unknown_kid_interval`]; tokens
//! arriving meanwhile wait for that one fetch) and every [`JwksFollow::refresh_interval`]. From the API's key file
//! it reads the file again when the file changes: looked at every [`KEY_FILE_POLL_INTERVAL`], and at once when a
//! token names a key it does not know (a stat, so it needs no rate limit), since the API may have read the rotated
//! file first. A fetch or a file that fails leaves the keys it has, with a warning: a relay that could verify
//! yesterday's tokens keeps verifying them while the API is down.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use skytale_auth::{Claims, FileStamp, KeyError, TokenError, TokenVerifier, KEY_FILE_POLL_INTERVAL};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::jwks::{fetch_verifier, JwksError, JwksFollow};

/// Why trusted keys could not be learned again; the keys in effect stay.
#[derive(Debug, thiserror::Error)]
pub enum KeyReloadError {
    #[error(transparent)]
    KeyFile(#[from] KeyError),
    #[error(transparent)]
    Jwks(#[from] JwksError),
}

/// Where the keys came from, and what following it needs.
enum Source {
    /// Given once by an embedder or a test; never learned again.
    Fixed,
    /// The API's key file on this host; `seen` is the stamp of the file last read (or tried).
    KeyFile { path: PathBuf, seen: Mutex<Option<FileStamp>> },
    /// The API's JWKS. The lock makes fetches one at a time; it holds when the last fetch for an unknown key id
    /// started.
    Jwks { follow: JwksFollow, last_unknown_kid_fetch: tokio::sync::Mutex<Option<Instant>> },
}

/// The verifier in effect, replaced whole when the keys are learned again.
pub struct TrustedKeys {
    current: RwLock<Arc<TokenVerifier>>,
    source: Source,
}

impl fmt::Debug for TrustedKeys {
    // The keys are public but printing them is noise; where they come from is what a log needs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Fixed => f.write_str("fixed keys"),
            Source::KeyFile { path, .. } => write!(f, "key file {}", path.display()),
            Source::Jwks { follow, .. } => write!(f, "JWKS {}", follow.url),
        }
    }
}

impl TrustedKeys {
    /// Keys that never change.
    pub fn fixed(verifier: TokenVerifier) -> Self {
        Self { current: RwLock::new(Arc::new(verifier)), source: Source::Fixed }
    }

    /// The keys of the API's key file at `path`, read again whenever it changes.
    pub fn from_key_file(path: &Path) -> Result<Self, KeyError> {
        // Stamped before reading, so a change while it is read is seen by the next poll.
        let seen = FileStamp::of(path);
        let verifier = TokenVerifier::from_key_file(path)?;
        Ok(Self {
            current: RwLock::new(Arc::new(verifier)),
            source: Source::KeyFile { path: path.to_owned(), seen: Mutex::new(seen) },
        })
    }

    /// The API's key set, fetched now (a relay that cannot verify tokens must not start) and then followed.
    pub async fn from_jwks(follow: JwksFollow) -> Result<Self, JwksError> {
        let verifier = fetch_verifier(&follow).await?;
        Ok(Self {
            current: RwLock::new(Arc::new(verifier)),
            source: Source::Jwks { follow, last_unknown_kid_fetch: tokio::sync::Mutex::new(None) },
        })
    }

    fn verifier(&self) -> Arc<TokenVerifier> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Verifies the value of an `authorization` header (see [`TokenVerifier::verify_bearer`]). A token signed by a
    /// key the relay does not know makes a relay following a JWKS fetch it again first (rate-limited), so the
    /// first token of a rotated key verifies at once.
    pub(crate) async fn verify_bearer(&self, header: Option<&str>) -> Result<Claims, TokenError> {
        let verified = self.verifier().verify_bearer(header);
        if !matches!(verified, Err(TokenError::UnknownKey(_))) {
            return verified;
        }
        let (follow, last_unknown_kid_fetch) = match &self.source {
            Source::Fixed => return verified,
            Source::KeyFile { path, seen } => {
                return if self.read_key_file_if_changed(path, seen) {
                    self.verifier().verify_bearer(header)
                } else {
                    verified
                };
            }
            Source::Jwks { follow, last_unknown_kid_fetch } => (follow, last_unknown_kid_fetch),
        };
        let mut last_fetch = last_unknown_kid_fetch.lock().await;
        // A fetch this one waited for may have brought the key.
        let verified = self.verifier().verify_bearer(header);
        if !matches!(verified, Err(TokenError::UnknownKey(_)))
            || last_fetch.is_some_and(|at| at.elapsed() < follow.unknown_kid_interval)
        {
            return verified;
        }
        *last_fetch = Some(Instant::now());
        tracing::info!(url = follow.url, "a token names a key this relay does not know: fetching the key set again");
        match self.fetch(follow).await {
            Ok(()) => self.verifier().verify_bearer(header),
            Err(_) => verified,
        }
    }

    /// Learns the keys again now, from wherever they come from (`skytale relay` does on SIGHUP). Returns the ids
    /// of the keys trusted afterwards; on failure the keys in effect stay.
    pub(crate) async fn reload(&self) -> Result<Vec<String>, KeyReloadError> {
        match &self.source {
            Source::Fixed => {}
            Source::KeyFile { path, seen } => {
                let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                *seen = FileStamp::of(path);
                self.read_key_file(path)?;
            }
            Source::Jwks { follow, last_unknown_kid_fetch } => {
                let _one_fetch_at_a_time = last_unknown_kid_fetch.lock().await;
                self.fetch(follow).await?;
            }
        }
        Ok(self.verifier().key_ids().into_iter().map(str::to_owned).collect())
    }

    /// Fetches the key set and installs it; a failure is logged (the keys in effect stay) and returned.
    async fn fetch(&self, follow: &JwksFollow) -> Result<(), JwksError> {
        match fetch_verifier(follow).await {
            Ok(verifier) => {
                self.install(verifier);
                Ok(())
            }
            Err(error) => {
                tracing::warn!("keeping the trusted keys: {error}");
                Err(error)
            }
        }
    }

    fn read_key_file(&self, path: &Path) -> Result<(), KeyError> {
        match TokenVerifier::from_key_file(path) {
            Ok(verifier) => {
                self.install(verifier);
                Ok(())
            }
            Err(error) => {
                tracing::warn!("keeping the trusted keys: cannot read them again: {error}");
                Err(error)
            }
        }
    }

    /// Reads the key file again if its stamp differs from the one last seen; whether it was read and its keys put
    /// in effect. A bad file is reported (by `read_key_file`) once, and read again once it changes (a fix, or a
    /// chmod).
    fn read_key_file_if_changed(&self, path: &Path, seen: &Mutex<Option<FileStamp>>) -> bool {
        let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
        let stamp = FileStamp::of(path);
        if stamp == *seen {
            return false;
        }
        *seen = stamp;
        self.read_key_file(path).is_ok()
    }

    /// Puts `verifier` in effect, logging the keys when they differ from those it replaces.
    fn install(&self, verifier: TokenVerifier) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if current.key_ids() != verifier.key_ids() {
            tracing::info!(source = ?self, keys = verifier.key_ids().join(" "), "trusted keys changed");
        }
        *current = Arc::new(verifier);
    }

    /// Follows the source until `stop` turns true: the key file is looked at every [`KEY_FILE_POLL_INTERVAL`] and
    /// read again when it changed; the JWKS is fetched again every [`JwksFollow::refresh_interval`]. Fixed keys
    /// have nothing to follow.
    pub(crate) async fn follow(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let period = match &self.source {
            Source::Fixed => return,
            Source::KeyFile { .. } => KEY_FILE_POLL_INTERVAL,
            Source::Jwks { follow, .. } => follow.refresh_interval,
        };
        // The keys were just learned: the first look is one period from now.
        let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.look_again().await,
                _ = crate::stopped(&mut stop) => return,
            }
        }
    }

    async fn look_again(&self) {
        match &self.source {
            Source::Fixed => {}
            Source::KeyFile { path, seen } => {
                self.read_key_file_if_changed(path, seen);
            }
            Source::Jwks { follow, last_unknown_kid_fetch } => {
                let _one_fetch_at_a_time = last_unknown_kid_fetch.lock().await;
                // Logged by `fetch`.
                let _ = self.fetch(follow).await;
            }
        }
    }
}
