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
    Store(#[from] crate::stored::StoreError),
    #[error("the log writer has stopped")]
    WriterStopped,
    #[error("cannot start the log writer thread: {0}")]
    WriterThread(std::io::Error),
    #[error(transparent)]
    Admin(#[from] skytale_admin::AdminError),
    #[error("max_streams_per_account (--max-streams-per-account) must be at least 1")]
    NoStreamsPerAccount,
    #[error(
        "the publish bytes burst (--publish-bytes-burst) of {burst} bytes is below the largest message the relay \
         accepts (--max-payload, {max_payload} bytes): such a message could never be published; make the burst at \
         least {max_payload}"
    )]
    PublishBytesBurstBelowMaxPayload { burst: u32, max_payload: usize },
    #[error(transparent)]
    Tls(#[from] skytale_tls_server::TlsError),
    #[error(transparent)]
    Nats(#[from] crate::nats::NatsError),
    #[error(
        "the JetStream log (--store nats://...) keeps messages by age only: leave out --retention-bytes, or use \
         the embedded log"
    )]
    JetStreamRetentionBytes,
}
