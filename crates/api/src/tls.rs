//! The API's listener over TLS, for `axum::serve`: connections come from `skytale_tls_server::TlsIncoming`,
//! which handshakes each in a task of its own, so a client that never finishes its handshake holds up nobody.

use std::net::SocketAddr;
use std::time::Duration;

use skytale_tls_server::{TlsAcceptor, TlsIncoming, TlsStream};
use tokio::net::{TcpListener, TcpStream};

/// A connection that has not completed its TLS handshake this long after it was accepted is closed.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What `axum::serve` accepts connections from when the API serves HTTPS.
pub(crate) struct TlsListener(TlsIncoming);

impl TlsListener {
    pub(crate) fn start(listener: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<Self> {
        TlsIncoming::start(listener, acceptor, TLS_HANDSHAKE_TIMEOUT).map(Self)
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        self.0.accept().await
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.0.local_addr())
    }
}
