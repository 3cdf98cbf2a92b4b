//! The certificate in service, as a rustls [`ResolvesServerCert`]: every handshake takes the current
//! `Arc<CertifiedKey>` (a read lock and a reference count), and a reload swaps it for the next handshakes. A
//! connection keeps the certificate it was handshaken with; nothing here touches it.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

use crate::load::load;
use crate::{TlsError, TlsFiles};

/// The files, what was last loaded from them, and what they looked like then.
pub(crate) struct CertStore {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' stamps when they were last read, whether or not that load succeeded: a broken renewal is
    /// reported once, not at every poll, and tried again as soon as either file changes again.
    seen: Mutex<Option<Stamps>>,
}

/// What tells a changed file from an unchanged one without reading it: a rewrite changes the modification time
/// (and usually the size), a replacement by rename (how renewal tools and Kubernetes secrets update) the inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

/// The certificate file's stamp and the key file's; `None` in [`CertStore::seen`] when either could not be read.
type Stamps = (Stamp, Stamp);

impl CertStore {
    /// Loads `files`; fails (naming the file) if they do not make a usable certificate and key.
    pub(crate) fn open(files: TlsFiles, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let seen = stamps(&files);
        let current = load(&files, &provider)?;
        Ok(Self { files, provider, current: RwLock::new(Arc::new(current)), seen: Mutex::new(seen) })
    }

    pub(crate) fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads the files again and serves what they hold from the next handshake on; on failure the current
    /// certificate stays.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        self.reload_stamped(stamps(&self.files))
    }

    /// [`reload`](Self::reload) if either file changed since it was last read; `None` if neither did.
    pub(crate) fn reload_if_changed(&self) -> Option<Result<(), TlsError>> {
        let now = stamps(&self.files);
        if *self.seen.lock().unwrap_or_else(PoisonError::into_inner) == now {
            return None;
        }
        Some(self.reload_stamped(now))
    }

    /// The certificate being served now.
    pub(crate) fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Loads the files, whose stamps were taken just before: a change made while they are read shows up as a
    /// change at the next poll and is read again then.
    fn reload_stamped(&self, stamps: Option<Stamps>) -> Result<(), TlsError> {
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = stamps;
        let loaded = Arc::new(load(&self.files, &self.provider)?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = loaded;
        Ok(())
    }
}

fn stamps(files: &TlsFiles) -> Option<Stamps> {
    Some((stamp(&files.cert)?, stamp(&files.key)?))
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    // Follows symbolic links: a link switched to a new target is a change.
    let metadata = std::fs::metadata(path).ok()?;
    Some(Stamp { modified: metadata.modified().ok(), len: metadata.len(), inode: metadata.ino() })
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore").field("files", &self.files).finish_non_exhaustive()
    }
}
