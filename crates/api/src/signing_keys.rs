//! The API's signing keys, as last read from its key file, and following that file while the server runs.
//!
//! The key file is a ring (`skytale_auth::KeyRing`): `skytale keys rotate-signing-key` appends a key and
//! `retire-signing-key` removes one, each by renaming a new file into place. The server notices within
//! [`KEY_FILE_POLL_INTERVAL`] (or at once on [`ApiHandle::reload_signing_keys`](crate::ApiHandle), which
//! `skytale api` calls on SIGHUP), and from then on signs with the newest key and publishes all of them. A file it
//! cannot use (unparsable, readable by others, gone) leaves the keys it has in place, with an error in the log
//! naming the file: a typo while editing must not stop the API from issuing tokens.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use skytale_auth::{FileStamp, KeyError, KeyRing, TokenIssuer, TokenVerifier, KEY_FILE_POLL_INTERVAL};
use tokio::sync::watch;

/// One reading of the key file: what signs and what verifies.
pub(crate) struct Keys {
    /// Signs with the ring's newest key; publishes every key.
    pub issuer: TokenIssuer,
    /// Accepts this API's own tokens as credentials, so an SDK holding only a token can still call the API.
    pub verifier: TokenVerifier,
}

impl Keys {
    fn from_ring(ring: &KeyRing, lifetime: Duration) -> Result<Self, KeyError> {
        let issuer = TokenIssuer::from_ring(ring)?.with_lifetime(lifetime);
        let verifier = issuer.verifier()?;
        Ok(Self { issuer, verifier })
    }
}

/// The current [`Keys`], replaced whole when the key file changes.
pub(crate) struct SigningKeys {
    path: PathBuf,
    lifetime: Duration,
    current: RwLock<Arc<Keys>>,
    /// The stamp of the file last read (or tried). Held through a whole reload, so two reloads (the poll and a
    /// SIGHUP) never install an older reading over a newer one.
    seen: Mutex<Option<FileStamp>>,
}

impl SigningKeys {
    /// Reads the ring at `path`, creating a ring of one key on first start; tokens live `lifetime`.
    pub(crate) fn load_or_create(path: &Path, lifetime: Duration) -> Result<Self, KeyError> {
        // Stamped before reading, so a change while it is read is seen by the next poll.
        let before = FileStamp::of(path);
        let ring = KeyRing::load_or_create(path)?;
        let seen = before.or_else(|| FileStamp::of(path));
        Ok(Self {
            path: path.to_owned(),
            lifetime,
            current: RwLock::new(Arc::new(Keys::from_ring(&ring, lifetime)?)),
            seen: Mutex::new(seen),
        })
    }

    /// The keys in effect now.
    pub(crate) fn current(&self) -> Arc<Keys> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Reads the key file again and puts its keys in effect; returns their ids, oldest first (the last signs). On
    /// failure the current keys stay, and the error (which names the file) is logged and returned.
    pub(crate) fn reload(&self) -> Result<Vec<String>, KeyError> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        *seen = FileStamp::of(&self.path);
        self.read_and_install()
    }

    /// [`reload`](Self::reload) if the key file's stamp differs from the one last seen. A bad file is reported
    /// once, not at every poll; it is read again once it changes (a fix, or a `chmod`).
    fn reload_if_changed(&self) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let stamp = FileStamp::of(&self.path);
        if stamp == *seen {
            return;
        }
        *seen = stamp;
        // Logged by `read_and_install`; the poll has no one to hand the error to.
        let _ = self.read_and_install();
    }

    fn read_and_install(&self) -> Result<Vec<String>, KeyError> {
        let read = KeyRing::load(&self.path).and_then(|ring| Ok((Keys::from_ring(&ring, self.lifetime)?, ring)));
        match read {
            Ok((keys, ring)) => {
                let kids: Vec<String> = ring.kids().into_iter().map(str::to_owned).collect();
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
                tracing::info!(
                    file = %self.path.display(),
                    keys = kids.join(" "),
                    signing = ring.signing_kid(),
                    "signing keys read"
                );
                Ok(kids)
            }
            Err(error) => {
                tracing::error!("cannot reload the signing keys, keeping the current ones: {error}");
                Err(error)
            }
        }
    }

    /// Looks at the key file every [`KEY_FILE_POLL_INTERVAL`] until `stop` turns true, reloading it when it changed.
    pub(crate) async fn follow(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(KEY_FILE_POLL_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.reload_if_changed(),
                // An error means the server's handle is gone: stop as well.
                _ = stop.wait_for(|stopping| *stopping) => return,
            }
        }
    }
}
