//! Relay access tokens: obtained from the API with the client's API key, and due for refresh at two thirds of
//! their lifetime (DESIGN §5).
//!
//! Every stream the transport opens asks for a fresh token (so a reconnect never presents a stale one), and the
//! transport's refresher replaces the token of the open stream in-band when [`Credentials::refresh_due`] says so.
//! Fetching a token moves that due time, which is how the refresher learns about tokens fetched elsewhere.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::api::ApiClient;
use crate::error::Error;

/// Source of relay tokens for one client.
pub(crate) struct Credentials {
    api: Arc<ApiClient>,
    refresh_due: watch::Sender<Option<Instant>>,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Credentials {
    pub fn new(api: Arc<ApiClient>) -> Self {
        Self { api, refresh_due: watch::Sender::new(None) }
    }

    /// A new JWT from the API (which also carries every channel grant recorded so far).
    pub async fn fresh_token(&self) -> Result<String, Error> {
        let token = self.api.access_token().await?;
        let lifetime = Duration::from_secs(token.expires_at.saturating_sub(unix_now()));
        self.refresh_due.send_replace(Some(Instant::now() + lifetime * 2 / 3));
        Ok(token.jwt)
    }

    /// When the most recently fetched token should be replaced (`None` until one was fetched).
    pub fn refresh_due(&self) -> watch::Receiver<Option<Instant>> {
        self.refresh_due.subscribe()
    }
}
