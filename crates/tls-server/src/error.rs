//! Why a certificate and key could not be put in service. Every message names the file it is about, since an
//! operator reading it has two files to look at and often a renewal job to blame.

use std::path::PathBuf;

/// Why [`ServerTls::start`](crate::ServerTls::start) or a reload failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `file` is `certificate` or `key`.
    #[error("cannot read the TLS {file} file {}: {source}", path.display())]
    Read { file: &'static str, path: PathBuf, source: std::io::Error },
    #[error("the TLS {file} file {} is not valid PEM: {reason}", path.display())]
    BadPem { file: &'static str, path: PathBuf, reason: String },
    #[error(
        "the TLS certificate file {} holds no certificate (-----BEGIN CERTIFICATE-----): pass the server's \
         certificate chain, its own certificate first",
        path.display()
    )]
    NoCertificate { path: PathBuf },
    #[error(
        "the TLS key file {} holds no private key (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE \
         KEY): pass the key of the certificate",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error("the private key in {} cannot be used: {reason}", path.display())]
    UnusableKey { path: PathBuf, reason: String },
    #[error("the first certificate in {} cannot be used: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error(
        "the private key in {} does not belong to the first certificate in {}: pass the key the certificate was \
         issued for",
        key.display(),
        cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("the TLS settings cannot be built: {0}")]
    Settings(String),
    #[error("cannot listen for SIGHUP (which re-reads the TLS files): {0}")]
    Signal(std::io::Error),
}
