//! TLS connections for a server that takes them one by one from a listener (the API, through axum): the TCP
//! accept loop runs in a task of its own and every handshake in another, bounded by a timeout, so a peer that
//! connects and says nothing costs a task and a descriptor for that long and never delays the next connection.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::listener::Listener;

/// Handshaken connections waiting for the server to take them.
const HANDOFF_CAPACITY: usize = 64;

/// A connection whose TLS handshake completed, and its peer.
pub type Handshaken = (TlsStream<TcpStream>, SocketAddr);

/// Connections of a listener that completed their TLS handshake. Dropping it closes the listener and the
/// connections still handshaking.
pub struct TlsIncoming {
    connections: mpsc::Receiver<Handshaken>,
    local_addr: SocketAddr,
}

impl TlsIncoming {
    /// Starts accepting on `listener`; a connection that has not completed its handshake within
    /// `handshake_timeout` is closed.
    pub fn start(listener: TcpListener, acceptor: TlsAcceptor, handshake_timeout: Duration) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (handoff, connections) = mpsc::channel(HANDOFF_CAPACITY);
        tokio::spawn(accept_loop(listener, acceptor, handshake_timeout, handoff));
        Ok(Self { connections, local_addr })
    }

    /// The next connection that completed its handshake.
    pub async fn accept(&mut self) -> Handshaken {
        match self.connections.recv().await {
            Some(connection) => connection,
            // The accept loop ends only when this receiver is dropped, or by a panic: no more connections.
            None => std::future::pending().await,
        }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
    handoff: mpsc::Sender<Handshaken>,
) {
    let mut listener = Listener::new(listener);
    loop {
        let (stream, peer) = tokio::select! {
            () = handoff.closed() => return,
            accepted = listener.accept() => accepted,
        };
        tokio::spawn(handshake(stream, peer, acceptor.clone(), handshake_timeout, handoff.clone()));
    }
}

async fn handshake(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    timeout: Duration,
    handoff: mpsc::Sender<Handshaken>,
) {
    let handshaken = tokio::select! {
        handshaken = tokio::time::timeout(timeout, acceptor.accept(stream)) => handshaken,
        // The server stopped: nothing will take this connection any more.
        () = handoff.closed() => return,
    };
    match handshaken {
        // Fails only when the server stopped; the connection is closed with it.
        Ok(Ok(tls)) => drop(handoff.send((tls, peer)).await),
        Ok(Err(error)) => tracing::debug!(%peer, "connection closed: TLS handshake failed: {error}"),
        Err(_) => tracing::debug!(%peer, "connection closed: no TLS handshake within {timeout:?}"),
    }
}
