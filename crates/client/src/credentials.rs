//! Relay access tokens: obtained from the API with the client's API key, and due for refresh at two thirds of
//! their lifetime (docs/client.md, "API, auth and tokens").
//!
//! Every stream the transport opens asks for a fresh token (so a reconnect presents every grant recorded so
//! far), and the transport's refresher replaces the token of the open stream in-band when
//! [`Credentials::refresh_due`] says so. Fetching a token moves that due time, which is how the refresher learns
//! about tokens fetched elsewhere. Only if the API is unreachable does a new stream fall back to the last token,
//! while it is still valid: an API outage alone must not keep the client off the relay.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::api::{AccessToken, ApiClient};
use crate::error::Error;

/// Source of relay tokens for one client.
pub(crate) struct Credentials {
    api: Arc<ApiClient>,
    refresh_due: watch::Sender<Option<Instant>>,
    last: Mutex<Option<AccessToken>>,
}

/// A fallback token must stay valid at least this long, so the stream can open and refresh it in time.
const FALLBACK_MARGIN_SECS: u64 = 60;

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Credentials {
    pub fn new(api: Arc<ApiClient>) -> Self {
        Self { api, refresh_due: watch::Sender::new(None), last: Mutex::new(None) }
    }

    /// A new JWT from the API (which also carries every channel grant recorded so far).
    pub async fn fresh_token(&self) -> Result<String, Error> {
        let token = self.api.access_token().await?;
        let lifetime = Duration::from_secs(token.expires_at.saturating_sub(unix_now()));
        self.refresh_due.send_replace(Some(Instant::now() + lifetime * 2 / 3));
        if let Ok(mut last) = self.last.lock() {
            *last = Some(token.clone());
        }
        Ok(token.jwt)
    }

    /// A token to open a new stream with: a fresh one, or, when the API cannot be reached, the last one if it is
    /// still valid for a while (the refresher keeps trying to replace it).
    pub async fn token_for_new_stream(&self) -> Result<String, Error> {
        match self.fresh_token().await {
            Err(Error::Transport(reason)) => {
                let last = self.last.lock().ok().and_then(|last| last.clone());
                match last.filter(|token| token.expires_at > unix_now() + FALLBACK_MARGIN_SECS) {
                    Some(token) => {
                        tracing::warn!(%reason, "API unreachable; opening the relay stream with the previous token");
                        Ok(token.jwt)
                    }
                    None => Err(Error::Transport(reason)),
                }
            }
            other => other,
        }
    }

    /// When the most recently fetched token should be replaced (`None` until one was fetched).
    pub fn refresh_due(&self) -> watch::Receiver<Option<Instant>> {
        self.refresh_due.subscribe()
    }
}
