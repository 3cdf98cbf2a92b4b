//! What every request handler shares.

use std::sync::Arc;

use crate::metrics::ApiMetrics;
use crate::signals::Signals;
use crate::signing_keys::SigningKeys;
use crate::storage::Storage;

/// Shared handler state; cloned per request (an `Arc`).
#[derive(Clone)]
pub(crate) struct AppState(Arc<Shared>);

pub(crate) struct Shared {
    pub storage: Storage,
    /// What signs new tokens and verifies the API's own; follows the key file.
    pub keys: Arc<SigningKeys>,
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
