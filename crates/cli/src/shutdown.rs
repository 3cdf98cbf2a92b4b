//! Waiting for the signals that end a long-running command.

use std::future::Future;

use tokio::signal::unix::{signal, SignalKind};

/// Registers for SIGINT and SIGTERM now and returns a future that resolves at the first of them.
/// Registering up front matters: a signal arriving before the future is polled is still caught.
pub fn termination() -> std::io::Result<impl Future<Output = ()>> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received, shutting down"),
            _ = terminate.recv() => tracing::info!("SIGTERM received, shutting down"),
        }
    })
}
