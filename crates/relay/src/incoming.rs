//! The relay's accept loop: which TCP connections reach the gRPC server at all.
//!
//! Everything here happens before a client has said who it is, so it must cost an anonymous peer little and
//! end on its own: a connection is counted against the caps the moment it is accepted (total and per peer IP),
//! and it is handed to the HTTP/2 server only once it has completed its TLS handshake (when the relay serves TLS)
//! and sent the HTTP/2 client preface, both within [`RelayConfig::handshake_timeout`](crate::RelayConfig) and in
//! a task of its own, so no peer holds up the accept loop. Sockets that never send a byte are closed instead of
//! being held for ever, and an accept that fails for lack of file descriptors backs off instead of retrying at
//! once (a busy loop that starves the connections already open). Each admitted connection also gets the in-flight
//! budget its streams share ([`ConnectionBudget`]), which the server hands to every stream through
//! [`ConnectionInfo`], and can be cut: at the end of a drain (docs/operations.md, "Graceful drain") every read and
//! write of a connection still open fails, which ends it even when its client never reads.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use skytale_tls_server::{Listener, TlsAcceptor, TlsStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_util::either::Either;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::inflight::ConnectionBudget;

/// What every HTTP/2 client sends first (RFC 9113, section 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Connections that sent their preface and wait for the gRPC server to take them.
const HANDOFF_CAPACITY: usize = 64;

/// The caps and the deadline applied before a connection reaches the server.
#[derive(Clone, Copy, Debug)]
pub struct AcceptPolicy {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub handshake_timeout: Duration,
    /// Bytes of deliveries in flight per connection (`inflight`).
    pub in_flight_per_connection: usize,
}

/// A connection as the HTTP/2 server reads it: plain TCP, or TLS over it (boxed: a TLS session is large).
type Transport = Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// Accepts on `listener` until `stop`; yields connections that fit the caps and completed their TLS handshake
/// (with `tls`) and sent the HTTP/2 preface in time, each cut when `cut` is cancelled. The receiver is the
/// server's incoming stream; the listener closes when the loop ends, so connection attempts from then on are
/// refused by the operating system.
pub fn accept(
    listener: TcpListener,
    policy: AcceptPolicy,
    tls: Option<TlsAcceptor>,
    stop: watch::Receiver<bool>,
    cut: CancellationToken,
) -> mpsc::Receiver<Admitted> {
    let (handoff, incoming) = mpsc::channel(HANDOFF_CAPACITY);
    let counts = Arc::new(ConnectionCounts::new(policy));
    tokio::spawn(accept_loop(listener, counts, policy, tls, cut, handoff, stop));
    incoming
}

async fn accept_loop(
    listener: TcpListener,
    counts: Arc<ConnectionCounts>,
    policy: AcceptPolicy,
    tls: Option<TlsAcceptor>,
    cut: CancellationToken,
    handoff: mpsc::Sender<Admitted>,
    mut stop: watch::Receiver<bool>,
) {
    let mut listener = Listener::new(listener);
    loop {
        let (stream, peer) = tokio::select! {
            _ = crate::stopped(&mut stop) => return,
            _ = handoff.closed() => return,
            accepted = listener.accept() => accepted,
        };
        // Dropping the stream closes it: over a cap, the peer gets an immediate close rather than a socket that
        // keeps a file descriptor of ours.
        let Some(permit) = ConnectionCounts::admit(&counts, peer.ip()) else {
            tracing::debug!(%peer, "connection refused: too many connections");
            continue;
        };
        let budget = ConnectionBudget::new(policy.in_flight_per_connection);
        let opening = Opening {
            peer,
            permit,
            budget,
            timeout: policy.handshake_timeout,
            tls: tls.clone(),
            // A token of its own, so that a connection waits on its own waker list, not one they all share.
            cut: cut.child_token(),
        };
        tokio::spawn(handshake(stream, opening, handoff.clone()));
    }
}

/// An accepted connection on its way to the server: who it is, its place under the caps and its deadline.
struct Opening {
    peer: SocketAddr,
    permit: ConnectionPermit,
    budget: ConnectionBudget,
    timeout: Duration,
    tls: Option<TlsAcceptor>,
    cut: CancellationToken,
}

/// Completes the TLS handshake (if the relay serves TLS), waits for the peer's HTTP/2 preface and hands the
/// connection to the server; closes it if either is late or wrong.
async fn handshake(stream: TcpStream, opening: Opening, handoff: mpsc::Sender<Admitted>) {
    let Opening { peer, permit, budget, timeout, tls, cut } = opening;
    let expected = if tls.is_some() { "TLS handshake and HTTP/2 preface" } else { "HTTP/2 preface" };
    let opened = tokio::select! {
        opened = tokio::time::timeout(timeout, open(stream, tls)) => opened,
        // The server stopped: nothing will take this connection any more.
        () = handoff.closed() => return,
    };
    let stream = match opened {
        Ok(Ok(stream)) => stream,
        Ok(Err(reason)) => return tracing::debug!(%peer, "connection closed: {reason}"),
        Err(_) => return tracing::debug!(%peer, "connection closed: no {expected} within {timeout:?}"),
    };
    // Fails only when the server stopped; the connection is closed with it.
    let cut = Box::pin(cut.cancelled_owned());
    let _ = handoff.send(Admitted { stream, preface_replayed: 0, budget, cut, _permit: permit }).await;
}

/// The TLS handshake, if any, then the HTTP/2 preface; `Err` says why the connection is refused.
async fn open(stream: TcpStream, tls: Option<TlsAcceptor>) -> Result<Transport, String> {
    stream.set_nodelay(true).map_err(|error| format!("TCP_NODELAY: {error}"))?;
    let mut stream = match tls {
        None => Either::Left(stream),
        Some(acceptor) => Either::Right(Box::new(
            acceptor.accept(stream).await.map_err(|error| format!("TLS handshake failed: {error}"))?,
        )),
    };
    let mut preface = [0u8; PREFACE.len()];
    stream.read_exact(&mut preface).await.map_err(|error| format!("closed before its HTTP/2 preface: {error}"))?;
    if preface != *PREFACE {
        return Err("not HTTP/2".to_owned());
    }
    Ok(stream)
}

/// Open connections, in total and per peer address.
struct ConnectionCounts {
    policy: AcceptPolicy,
    open: Mutex<OpenConnections>,
}

#[derive(Default)]
struct OpenConnections {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

impl ConnectionCounts {
    fn new(policy: AcceptPolicy) -> Self {
        Self { policy, open: Mutex::new(OpenConnections::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OpenConnections> {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a new connection from `ip`, or `None` if it would exceed a cap.
    fn admit(counts: &Arc<Self>, ip: IpAddr) -> Option<ConnectionPermit> {
        let mut open = counts.lock();
        if open.total >= counts.policy.max_connections {
            return None;
        }
        let from_ip = open.per_ip.entry(ip).or_default();
        if *from_ip >= counts.policy.max_connections_per_ip {
            return None;
        }
        *from_ip += 1;
        open.total += 1;
        Some(ConnectionPermit { counts: Arc::clone(counts), ip })
    }
}

/// One counted connection; uncounted when dropped, i.e. when the connection is closed.
struct ConnectionPermit {
    counts: Arc<ConnectionCounts>,
    ip: IpAddr,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut open = self.counts.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(from_ip) = open.per_ip.get_mut(&self.ip) {
            *from_ip = from_ip.saturating_sub(1);
            if *from_ip == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
    }
}

/// A connection that sent the HTTP/2 preface. The preface was consumed to check it, so reads first replay it
/// for the HTTP/2 server; the connection stays counted until the server drops it.
pub struct Admitted {
    stream: Transport,
    preface_replayed: usize,
    budget: ConnectionBudget,
    /// Completes when the relay cuts its connections; polled by every read and write, so that a connection
    /// waiting on a client that does not read is woken to fail.
    cut: Pin<Box<WaitForCancellationFutureOwned>>,
    _permit: ConnectionPermit,
}

impl Admitted {
    /// `Err` once the relay has cut its connections; otherwise registers the caller to be woken when it does.
    fn check_cut(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        match self.cut.as_mut().poll(cx) {
            Poll::Ready(()) => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the relay cut the connection at the end of its drain timeout",
            )),
            Poll::Pending => Ok(()),
        }
    }
}

/// What the server tells each stream about its connection: the peer, and the budget its streams share.
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    tcp: TcpConnectInfo,
    budget: ConnectionBudget,
}

impl ConnectionInfo {
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.tcp.remote_addr()
    }

    pub fn budget(&self) -> ConnectionBudget {
        self.budget.clone()
    }
}

impl Connected for Admitted {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        let tcp = match &self.stream {
            Either::Left(tcp) => tcp,
            Either::Right(tls) => tls.get_ref().0,
        };
        ConnectionInfo { tcp: tcp.connect_info(), budget: self.budget.clone() }
    }
}

impl AsyncRead for Admitted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.check_cut(cx)?;
        let rest = &PREFACE[self.preface_replayed..];
        if rest.is_empty() {
            return Pin::new(&mut self.stream).poll_read(cx, buf);
        }
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        self.preface_replayed += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.check_cut(cx)?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check_cut(cx)?;
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check_cut(cx)?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
