//! Skytale API server: accounts, API keys, access tokens (JWT), channels, invites and the invite join flow.
//!
//! Library first: tests and `skytale dev` start it in-process with [`Api::start`]; the CLI provisions keys with
//! [`Storage::open`] + [`create_account_with_key`] and revokes them with [`Storage::revoke_api_key`].
//! Tokens are verified (by the relay) with `skytale_auth::TokenVerifier`; the signing keys follow the key file
//! while the server runs (`signing_keys`). HTTP endpoints are described in
//! `docs/api.md` and served as OpenAPI at `/v1/openapi.json`.

mod admin;
mod caller;
mod config;
mod error;
mod metrics;
mod peers;
mod quotas;
mod request_log;
mod routes;
mod secrets;
mod server;
mod signals;
mod signing_keys;
mod state;
mod storage;
mod tls;

pub use admin::{create_account_with_key, AdminError};
pub use config::{ApiConfig, DEFAULT_LISTEN, SIGNING_KEY_FILE};
pub use error::ApiError;
pub use quotas::ApiQuotas;
pub use routes::Route;
pub use secrets::{API_KEY_PREFIX, INVITE_PREFIX};
pub use server::{Api, ApiHandle, ServeError};
/// [`ApiConfig::tls`]'s type and what it can fail with, re-exported so embedders need not depend on
/// `skytale-tls-server` directly.
pub use skytale_tls_server::{TlsError, TlsFiles};
pub use storage::{Account, NewApiKey, Storage, StorageError};
pub use tls::TLS_HANDSHAKE_TIMEOUT;
