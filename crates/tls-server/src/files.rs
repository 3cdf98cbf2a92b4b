//! Where a server's certificate and key are, and how often they are looked at.

use std::path::PathBuf;
use std::time::Duration;

/// How often the files' modification time, size and inode are compared with what was last loaded: often
/// enough that a renewal is in service within seconds, rarely enough to cost nothing (two `stat` calls).
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// The shortest polling period [`ServerTls`](crate::ServerTls) uses; a shorter (or zero) one is raised to this.
pub const MIN_RELOAD_INTERVAL: Duration = Duration::from_millis(10);

/// A server's TLS identity on disk, both PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, the server's own certificate first, then any intermediates.
    pub cert: PathBuf,
    /// The private key of the first certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// How often the files are checked for a change ([`DEFAULT_RELOAD_INTERVAL`]); SIGHUP re-reads them at once.
    pub reload_interval: Duration,
}

impl TlsFiles {
    /// The two files, checked for changes every [`DEFAULT_RELOAD_INTERVAL`].
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self { cert: cert.into(), key: key.into(), reload_interval: DEFAULT_RELOAD_INTERVAL }
    }
}
