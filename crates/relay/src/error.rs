//! Errors that stop the relay from starting or from storing messages.

use std::path::PathBuf;

/// Why the relay could not start or a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("{0}: one relay per data directory (stop the other relay, or give this one another data directory)")]
    DataDirLocked(skytale_dir_lock::LockError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("message store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("the log writer has stopped")]
    WriterStopped,
    #[error("cannot start the log writer thread: {0}")]
    WriterThread(std::io::Error),
    #[error(transparent)]
    Admin(#[from] skytale_admin::AdminError),
    #[error(transparent)]
    Tls(#[from] skytale_tls_server::TlsError),
}
