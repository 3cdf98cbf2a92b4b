//! Starting and stopping the server.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::Listener;
use axum::Router;
use skytale_admin::{AdminError, AdminHandle, AdminServer, Component, Readiness};
use skytale_auth::KeyError;
use skytale_tls_server::{ServerTls, TlsError, ALPN_H2, ALPN_HTTP1};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::ApiMetrics;
use crate::peers::{self, Peers};
use crate::quotas::Quotas;
use crate::routes::{router, Route};
use crate::signals::Signals;
use crate::signing_keys::SigningKeys;
use crate::state::{AppState, Shared};
use crate::storage::{Storage, StorageError};
use crate::tls::TlsListener;
use crate::ApiConfig;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("binding {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
    #[error("server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// The API server.
pub struct Api;

impl Api {
    /// Opens the database (applying migrations), loads or creates the signing keys, binds and starts serving in
    /// the background. The signing keys then follow the key file (`signing_keys`).
    pub async fn start(config: ApiConfig) -> Result<ApiHandle, ServeError> {
        // First, so wrong files are reported before anything else starts.
        let tls = config.tls.as_ref().map(|files| ServerTls::start(files, &[ALPN_H2, ALPN_HTTP1])).transpose()?;
        let storage = Storage::open(&config.database_url).await?;
        let keys = match SigningKeys::load_or_create(&config.key_file, config.token_lifetime) {
            Ok(keys) => Arc::new(keys),
            Err(error) => {
                storage.close().await;
                return Err(error.into());
            }
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServeError::Bind { addr: config.listen, source })?;
        let local_addr = listener.local_addr().map_err(|source| ServeError::Bind { addr: config.listen, source })?;
        let (metrics, registry) = ApiMetrics::new();
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let component = Component {
            name: "api",
            registry: Arc::new(registry),
            readiness: readiness(storage.clone(), shutdown_rx.clone()),
        };
        let admin = match AdminServer::start_if(config.admin_listen, vec![component.clone()]).await {
            Ok(admin) => admin,
            Err(error) => {
                storage.close().await;
                return Err(error.into());
            }
        };
        let instance = peers::new_instance_id();
        let peers = storage.is_postgres().then(|| Peers::new(storage.pool().clone(), instance.clone()));
        let quotas = Arc::new(Quotas::new(config.quotas));
        tokio::spawn(forget_idle_accounts(quotas.clone(), shutdown_rx.clone()));
        let signals = Arc::new(Signals::new(shutdown_rx.clone(), metrics.long_polls_waiting.clone()));
        // One LISTEN connection per process, for the other instances on the same PostgreSQL.
        let follower = storage.is_postgres().then(|| {
            tokio::spawn(peers::follow(config.database_url.clone(), instance, signals.clone(), shutdown_rx.clone()))
        });
        let state = AppState::new(Shared {
            storage: storage.clone(),
            keys: Arc::clone(&keys),
            signals,
            peers,
            metrics: Arc::new(metrics),
            quotas: quotas.clone(),
        });
        let (app, routes) = router(state);
        let key_follower = tokio::spawn(Arc::clone(&keys).follow(shutdown_rx.clone()));
        let task = match &tls {
            None => tokio::spawn(serve(listener, app, shutdown_rx)),
            Some(tls) => {
                let listener = TlsListener::start(listener, tls.acceptor())
                    .map_err(|source| ServeError::Bind { addr: config.listen, source })?;
                tokio::spawn(serve(listener, app, shutdown_rx))
            }
        };
        tracing::info!(%local_addr, tls = tls.is_some(), "skytale API listening");
        Ok(ApiHandle {
            local_addr,
            shutdown_tx,
            task,
            follower,
            storage,
            routes,
            component,
            admin,
            _tls: tls,
            keys,
            key_follower,
        })
    }
}

/// Serves `app` on `listener` (plain TCP or TLS) until `stop` turns true or its sender is dropped.
async fn serve<L>(listener: L, app: Router, mut stop: watch::Receiver<bool>) -> std::io::Result<()>
where
    L: Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            // An error means the handle was dropped: stop as well.
            let _ = stop.wait_for(|stopping| *stopping).await;
        })
        .await
}

/// Every minute until shutdown, drops the quota buckets of accounts that have been quiet long enough to have
/// full buckets again.
async fn forget_idle_accounts(quotas: Arc<Quotas>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(FORGET_IDLE_ACCOUNTS_EVERY) => quotas.forget_idle_accounts(),
            _ = shutdown.wait_for(|stopping| *stopping) => return,
        }
    }
}

const FORGET_IDLE_ACCOUNTS_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// The API is ready while its database answers a trivial query and it is not stopping (`stopping` turned true),
/// so that a load balancer stops sending it requests as soon as the shutdown begins.
fn readiness(storage: Storage, stopping: watch::Receiver<bool>) -> Readiness {
    Arc::new(move || {
        let storage = storage.clone();
        let stopping = *stopping.borrow();
        Box::pin(async move {
            if stopping {
                return Err("shutting down: the API finishes the requests in progress and takes no new ones".to_owned());
            }
            storage.check().await.map_err(|error| format!("the database does not answer: {error}"))
        })
    })
}

/// A running server. Dropping it stops the server too; [`ApiHandle::shutdown`] waits for it.
pub struct ApiHandle {
    local_addr: SocketAddr,
    shutdown_tx: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
    /// The LISTEN task of [`peers::follow`], with PostgreSQL.
    follower: Option<JoinHandle<()>>,
    storage: Storage,
    routes: Vec<Route>,
    component: Component,
    admin: Option<AdminHandle>,
    /// The certificate in service and its reloading, with [`ApiConfig::tls`]; reloading stops with the handle.
    _tls: Option<ServerTls>,
    keys: Arc<SigningKeys>,
    key_follower: JoinHandle<()>,
}

impl ApiHandle {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's database, e.g. for `skytale dev` to provision its dev API key.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Every (method, path) the router serves.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The address of the admin listener (`/healthz`, `/readyz`, `/metrics`), if [`ApiConfig::admin_listen`]
    /// asked for one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(AdminHandle::local_addr)
    }

    /// The API's metrics and readiness check, for an admin listener shared with other servers (`skytale dev`).
    pub fn admin_component(&self) -> Component {
        self.component.clone()
    }

    /// Reads the key file again now, rather than at the next poll (`skytale api` calls it on SIGHUP): new tokens
    /// are then signed with its newest key, and the JWKS lists all of them. Returns the key ids, oldest first. A file
    /// that cannot be used leaves the current keys in effect; its error names the file (and is logged).
    pub fn reload_signing_keys(&self) -> Result<Vec<String>, KeyError> {
        self.keys.reload()
    }

    /// Stops accepting, ends open long-polls (they answer with the current state, which clients take as "ask
    /// again"), waits for in-flight requests and closes the database (docs/operations.md, "Graceful drain").
    /// `/readyz` answers 503 from the start; the admin listener stops last.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        self.shutdown_tx.send_replace(true);
        let served = self.task.await;
        let followed = match self.follower {
            Some(follower) => follower.await,
            None => Ok(()),
        };
        let keys_followed = self.key_follower.await;
        self.storage.close().await;
        if let Some(admin) = self.admin {
            admin.shutdown().await;
        }
        followed?;
        keys_followed?;
        served?.map_err(ServeError::Serve)
    }
}
