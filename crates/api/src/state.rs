//! What every request handler shares.

use std::sync::Arc;

use crate::metrics::ApiMetrics;
use crate::peers::Peers;
use crate::quotas::Quotas;
use crate::signals::{Signals, Subject};
use crate::signing_keys::SigningKeys;
use crate::storage::Storage;

/// Shared handler state; cloned per request (an `Arc`).
#[derive(Clone)]
pub(crate) struct AppState(Arc<Shared>);

pub(crate) struct Shared {
    pub storage: Storage,
    /// What signs new tokens and verifies the API's own; follows the key file.
    pub keys: Arc<SigningKeys>,
    pub signals: Arc<Signals>,
    /// The other API instances on this database, if it is PostgreSQL.
    pub peers: Option<Peers>,
    pub metrics: Arc<ApiMetrics>,
    pub quotas: Arc<Quotas>,
}

impl Shared {
    /// Wakes the long-polls waiting on any of `subjects`, in this process and in the other API instances.
    pub(crate) async fn wake(&self, subjects: &[Subject]) {
        for subject in subjects {
            self.signals.ring_here(subject);
        }
        if let Some(peers) = &self.peers {
            peers.notify(subjects).await;
        }
    }
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
