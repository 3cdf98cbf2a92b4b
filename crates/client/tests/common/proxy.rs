//! A TCP forwarder in front of a relay that counts the connections it forwards. The client opens a new
//! connection for every link (stream open), so this counts the links that reached the relay, without touching
//! either side. It can also stand for something on the way that cannot take large requests: with a cap, a
//! connection over which the client sent more than that many bytes is cut.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Forwards each connection to `backend`. Stops when dropped (with its runtime).
pub struct CountingProxy {
    _runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    forwarded: Arc<AtomicUsize>,
}

impl CountingProxy {
    pub fn start(backend: SocketAddr) -> Self {
        Self::start_with_cap(backend, None)
    }

    /// With `cap`: a connection is cut once the client has sent more than `cap` bytes over it.
    pub fn start_with_cap(backend: SocketAddr, cap: Option<usize>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let forwarded = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&forwarded);
        runtime.spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    // A connection the relay does not accept (it is down) is no link.
                    let Ok(upstream) = TcpStream::connect(backend).await else { return };
                    counter.fetch_add(1, Ordering::SeqCst);
                    forward(socket, upstream, cap.unwrap_or(usize::MAX)).await;
                });
            }
        });
        Self { _runtime: runtime, addr, forwarded }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections forwarded to the relay so far: one per link the client opened.
    pub fn forwarded(&self) -> usize {
        self.forwarded.load(Ordering::SeqCst)
    }
}

/// Copies both ways until either side closes, or until the client has sent more than `cap` bytes.
async fn forward(client: TcpStream, relay: TcpStream, cap: usize) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut relay_read, mut relay_write) = relay.into_split();
    let upstream = async move {
        let mut buffer = vec![0u8; 16 * 1024];
        let mut sent = 0;
        loop {
            match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    sent += n;
                    if sent > cap || relay_write.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let downstream = async move {
        let _ = tokio::io::copy(&mut relay_read, &mut client_write).await;
    };
    // Whichever direction ends first ends the connection: both halves are dropped.
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}
