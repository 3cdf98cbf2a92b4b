//! Server configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::ApiQuotas;
use skytale_tls_server::TlsFiles;

/// Where the API listens and keeps its state.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Address to listen on; port 0 picks a free port (see [`crate::ApiHandle::local_addr`]).
    pub listen: SocketAddr,
    /// `sqlite://PATH` (single node) or `postgres://…` (cluster).
    pub database_url: String,
    /// Ed25519 signing keys (PKCS#8 PEM blocks, oldest first, the last signing; mode 0600), one created on first
    /// start, followed while the server runs (docs/operations.md, "Signing-key rotation"). Relays on the same host
    /// may read it to verify tokens instead of fetching the JWKS.
    pub key_file: PathBuf,
    /// How long an issued access token is valid (default [`skytale_auth::TOKEN_LIFETIME`], 15 minutes). A
    /// revoked key's tokens, and so its relay streams, last at most this long after the revocation.
    pub token_lifetime: Duration,
    /// Where to serve `/healthz`, `/readyz` and `/metrics` (docs/operations.md, "Health and metrics"); `None`
    /// serves them nowhere. `skytale dev` leaves it `None` and serves the API's
    /// [`admin_component`](crate::ApiHandle::admin_component) on its own admin listener.
    pub admin_listen: Option<SocketAddr>,
    /// Per-account limits on requests and invites.
    pub quotas: ApiQuotas,
    /// Serve HTTPS with this certificate and key (docs/operations.md, "TLS"); `None` serves plain HTTP. The
    /// files are re-read when they change and on SIGHUP.
    pub tls: Option<TlsFiles>,
}

/// The signing-key file's name in the API's data directory (`skytale api --data-dir`).
pub const SIGNING_KEY_FILE: &str = "api-signing-key.pem";

/// Default listen address of the API.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

impl ApiConfig {
    /// Everything under `data_dir`: `api.db` (SQLite) and `api-signing-key.pem`, listening on `listen`, with
    /// tokens of the default lifetime, no admin listener and no TLS.
    pub fn in_data_dir(data_dir: &Path, listen: SocketAddr) -> Self {
        Self {
            listen,
            database_url: format!("sqlite://{}", data_dir.join("api.db").display()),
            key_file: data_dir.join(SIGNING_KEY_FILE),
            token_lifetime: skytale_auth::TOKEN_LIFETIME,
            admin_listen: None,
            quotas: ApiQuotas::default(),
            tls: None,
        }
    }
}
