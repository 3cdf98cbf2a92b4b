//! The admin listener: an axum server on its own address, apart from the service's own listener, so that
//! probes and scrapes are neither exposed where clients connect nor held up behind their traffic.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long `/readyz` waits for a component's store before reporting it unready.
pub const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// `/metrics`' content type: what `prometheus_client`'s text encoder writes.
const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A component's readiness check: `Err` says what does not answer.
pub type Readiness = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// What one server contributes to an admin listener.
#[derive(Clone)]
pub struct Component {
    /// Names the component in `/readyz` answers, e.g. `relay`.
    pub name: &'static str,
    pub registry: Arc<Registry>,
    pub readiness: Readiness,
}

/// The admin listener could not start.
#[derive(Debug, thiserror::Error)]
#[error("admin listener on {addr}: {source}")]
pub struct AdminError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

/// Starts admin listeners.
pub struct AdminServer;

/// A running admin listener; [`shutdown`](Self::shutdown) stops it.
pub struct AdminHandle {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

impl AdminServer {
    /// Binds `listen` and serves `/healthz`, `/readyz` and `/metrics` for `components` in the background.
    pub async fn start(listen: SocketAddr, components: Vec<Component>) -> Result<AdminHandle, AdminError> {
        let listener =
            tokio::net::TcpListener::bind(listen).await.map_err(|source| AdminError { addr: listen, source })?;
        let local_addr = listener.local_addr().map_err(|source| AdminError { addr: listen, source })?;
        let app = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(Arc::new(components));
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // An error means the handle was dropped: stop as well.
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await
        });
        tracing::info!(%local_addr, "admin listening (/healthz, /readyz, /metrics)");
        Ok(AdminHandle { local_addr, stop, task })
    }

    /// [`start`](Self::start) if `listen` is given (the admin listener is off unless asked for).
    pub async fn start_if(
        listen: Option<SocketAddr>,
        components: Vec<Component>,
    ) -> Result<Option<AdminHandle>, AdminError> {
        match listen {
            Some(listen) => Self::start(listen, components).await.map(Some),
            None => Ok(None),
        }
    }
}

impl AdminHandle {
    /// The bound address (with the actual port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and waits for requests in progress.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "admin listener failed"),
            Err(error) => tracing::error!(%error, "admin listener task failed"),
        }
    }
}

type Components = State<Arc<Vec<Component>>>;

async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 when every component's check passes within [`READINESS_TIMEOUT`], else 503 naming each that did not.
async fn readyz(State(components): Components) -> Response {
    let checks = components.iter().map(|component| async move {
        match tokio::time::timeout(READINESS_TIMEOUT, (component.readiness)()).await {
            Ok(Ok(())) => None,
            Ok(Err(problem)) => Some(format!("{}: {problem}", component.name)),
            Err(_) => Some(format!("{}: its store did not answer within {READINESS_TIMEOUT:?}", component.name)),
        }
    });
    let problems: Vec<String> = futures::future::join_all(checks).await.into_iter().flatten().collect();
    if problems.is_empty() {
        (StatusCode::OK, Json(serde_json::json!({ "status": "ready" }))).into_response()
    } else {
        for problem in &problems {
            tracing::warn!("not ready: {problem}");
        }
        let body = serde_json::json!({ "status": "not_ready", "problems": problems });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

async fn metrics(State(components): Components) -> Response {
    let mut text = String::new();
    let encoded = components
        .iter()
        .try_for_each(|component| prometheus_client::encoding::text::encode_registry(&mut text, &component.registry))
        .and_then(|()| prometheus_client::encoding::text::encode_eof(&mut text));
    match encoded {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS_TEXT)], text).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "encoding the metrics failed\n").into_response(),
    }
}
