//! Server configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where the API listens and keeps its state.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Address to listen on; port 0 picks a free port (see [`crate::ApiHandle::local_addr`]).
    pub listen: SocketAddr,
    /// `sqlite://PATH` (single node) or `postgres://…` (cluster).
    pub database_url: String,
    /// Ed25519 signing key (PKCS#8 PEM, 0600), created on first start. Relays on the same host may read it to
    /// verify tokens instead of fetching the JWKS.
    pub key_file: PathBuf,
}

/// Default listen address of the API.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

impl ApiConfig {
    /// Everything under `data_dir`: `api.db` (SQLite) and `api-signing-key.pem`, listening on `listen`.
    pub fn in_data_dir(data_dir: &Path, listen: SocketAddr) -> Self {
        Self {
            listen,
            database_url: format!("sqlite://{}", data_dir.join("api.db").display()),
            key_file: data_dir.join("api-signing-key.pem"),
        }
    }
}
