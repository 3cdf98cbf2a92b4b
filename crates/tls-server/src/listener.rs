//! Taking TCP connections from a listener without a busy loop when the process runs out of resources: the relay's
//! accept loop and [`TlsIncoming`](crate::TlsIncoming) both take theirs through [`Listener`].

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// First pause after an accept failed for lack of resources (file descriptors, memory); it doubles on each
/// further failure up to [`MAX_ACCEPT_BACKOFF`], and starts over after the next successful accept.
const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// A TCP listener whose [`accept`](Self::accept) only returns connections: an accept failed for one connection is
/// skipped, one failed for lack of resources (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`), which only time and
/// closing connections cure, is retried after a pause instead of at once (a busy loop that starves the
/// connections already open).
pub struct Listener {
    listener: TcpListener,
    backoff: Duration,
}

impl Listener {
    pub fn new(listener: TcpListener) -> Self {
        Self { listener, backoff: MIN_ACCEPT_BACKOFF }
    }

    /// The next connection and its peer. Cancel-safe: dropping the future loses no connection.
    pub async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok(accepted) => {
                    self.backoff = MIN_ACCEPT_BACKOFF;
                    return accepted;
                }
                // The peer gave up between its SYN and our accept: nothing to wait for.
                Err(error) if is_per_connection(&error) => tracing::debug!(%error, "accept failed"),
                Err(error) => {
                    if self.backoff == MIN_ACCEPT_BACKOFF {
                        tracing::warn!(%error, "accept failed, backing off until connections close");
                    }
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(MAX_ACCEPT_BACKOFF);
                }
            }
        }
    }
}

/// Errors that concern one connection only, as opposed to the listener's resources.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
    )
}
