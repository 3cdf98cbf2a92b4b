//! What every request handler shares.

use std::sync::Arc;

use skytale_auth::{TokenIssuer, TokenVerifier};

use crate::metrics::ApiMetrics;
use crate::signals::Signals;
use crate::storage::Storage;

/// Shared handler state; cloned per request (an `Arc`).
#[derive(Clone)]
pub(crate) struct AppState(Arc<Shared>);

pub(crate) struct Shared {
    pub storage: Storage,
    pub issuer: TokenIssuer,
    /// Accepts this API's own tokens as credentials, so an SDK holding only a token can still call the API.
    pub verifier: TokenVerifier,
    pub signals: Signals,
    pub metrics: Arc<ApiMetrics>,
}

impl AppState {
    pub(crate) fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
