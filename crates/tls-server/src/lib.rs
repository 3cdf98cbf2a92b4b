//! TLS on Skytale's own listeners: the relay's gRPC listener and the API's HTTP listener (docs/operations.md,
//! "TLS"). Both servers take the same two PEM files (`--tls-cert`, `--tls-key`) and use this crate, so a
//! certificate is loaded, checked and renewed the same way everywhere.
//!
//! Certificates are short-lived in most deployments (ACME, an internal CA), so a renewal must not need a
//! restart, which would drop every client's stream. [`ServerTls`] answers each handshake with the certificate
//! its resolver (a rustls `ResolvesServerCert`) holds at that moment, and re-reads the files when they change on disk (polled) or
//! when the process gets SIGHUP: new connections get the new certificate, established ones are untouched. A
//! renewal that does not load (bad PEM, a key that belongs to another certificate) is logged with the file it
//! concerns and the previous certificate stays in service.
//!
//! The relay runs its TLS handshakes in its own accept loop, inside its connection caps and handshake timeout;
//! servers without such a loop (the API) use [`TlsIncoming`], which handshakes each connection in a task of its
//! own, bounded in time, so a silent peer never holds up the next one. Both take TCP connections through
//! [`Listener`], which backs off instead of spinning when the process runs out of file descriptors.
//!
//! With the `local-ca` feature, [`LocalCa`] makes a private CA and a certificate for `localhost` and
//! `127.0.0.1`: what `skytale dev --tls` serves, and what the tests issue their certificates with.

mod error;
mod files;
mod incoming;
mod listener;
mod load;
#[cfg(feature = "local-ca")]
mod local_ca;
mod server;
mod store;

pub use error::TlsError;
pub use files::{TlsFiles, DEFAULT_RELOAD_INTERVAL, MIN_RELOAD_INTERVAL};
pub use incoming::{Handshaken, TlsIncoming};
pub use listener::Listener;
#[cfg(feature = "local-ca")]
pub use local_ca::{LocalCa, LocalCaError, CA_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE};
pub use server::{ServerTls, ALPN_H2, ALPN_HTTP1};
pub use tokio_rustls::server::TlsStream;
pub use tokio_rustls::TlsAcceptor;
