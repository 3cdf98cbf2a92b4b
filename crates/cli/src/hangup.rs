//! SIGHUP: a running server learns its keys again now rather than at its next look (docs/operations.md,
//! "Signing-key rotation"). `skytale api` reads its signing-key file, `skytale relay` its key file or JWKS URL.
//! Once registered, SIGHUP no longer ends the process, as with most daemons.

use std::future::Future;

use tokio::signal::unix::{signal, Signal, SignalKind};

/// SIGHUPs received since [`Hangups::register`].
pub struct Hangups(Signal);

impl Hangups {
    /// Registers for SIGHUP now, so that one arriving before the server is up is neither lost nor fatal.
    pub fn register() -> std::io::Result<Self> {
        signal(SignalKind::hangup()).map(Self)
    }

    /// Runs `reload` at every SIGHUP until `until` resolves.
    pub async fn reload_until<F, Fut>(mut self, until: impl Future<Output = ()>, mut reload: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ()>,
    {
        tokio::pin!(until);
        loop {
            tokio::select! {
                () = &mut until => return,
                Some(()) = self.0.recv() => {
                    tracing::info!("SIGHUP received, reading the keys again");
                    reload().await;
                }
            }
        }
    }
}
