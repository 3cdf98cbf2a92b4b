//! `skytale dev`: the local development stack in one process on 127.0.0.1, every store under one directory:
//! the API server (`DIR/api`: SQLite database and signing key), the relay (`DIR/relay`) with JWT auth on,
//! verifying tokens with the API's key read in-process, and a dev account whose API key is kept in
//! `DIR/api-keys/ORG.key`. Auth is on so that what works against `skytale dev` also works against a deployment.
//!
//! stdout gets exactly three lines once both services listen, in this order:
//! `export SKYTALE_RELAY=…`, `export SKYTALE_API_URL=…`, `export SKYTALE_API_KEY=…`. With `--admin-listen`, one
//! admin listener serves both services' health and metrics; its address is logged, not printed.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use skytale_admin::{AdminHandle, AdminServer};
use skytale_api::{Api, ApiConfig, ApiHandle};
use skytale_relay::{Relay, RelayAuth, RelayConfig, RelayError, RelayHandle};

use super::{default_dir, CommandError};
use crate::args::DevArgs;
use crate::shutdown::termination;
use crate::{announce, dev_key};

/// Both services, running, and their shared admin listener if one was asked for.
struct DevStack {
    api: ApiHandle,
    relay: RelayHandle,
    admin: Option<AdminHandle>,
}

pub async fn run(args: DevArgs) -> Result<(), CommandError> {
    let dir = match args.dir.clone() {
        Some(dir) => dir,
        None => default_dir("dev", "--dir")?,
    };
    let terminated = termination().map_err(CommandError::Signals)?;
    std::fs::create_dir_all(&dir).map_err(|source| RelayError::DataDir { path: dir.clone(), source })?;
    // Held until the stack has stopped: a second stack on this directory would share the API's database and
    // fight over the relay's log.
    let _dir_lock = skytale_dir_lock::DirLock::acquire(&dir).map_err(CommandError::DevDirInUse)?;
    let (stack, api_key) = start(&dir, &args).await?;
    if let Err(error) = announce_stack(&stack, &api_key) {
        stack.shutdown().await;
        return Err(CommandError::Stdout(error));
    }
    tracing::info!(dir = %dir.display(), org = args.org, "dev stack running; Ctrl-C to stop");
    terminated.await;
    stack.shutdown().await;
    Ok(())
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Starts the API, makes sure the dev key exists, then starts the relay trusting the API's signing key, then the
/// admin listener if asked for. If a later step fails, what already started is stopped again.
async fn start(dir: &Path, args: &DevArgs) -> Result<(DevStack, String), CommandError> {
    let api_config = ApiConfig::in_data_dir(&dir.join("api"), loopback(args.api_port));
    let key_file = api_config.key_file.clone();
    // The API creates the signing key on first start, so the relay can only read it afterwards.
    let api = Api::start(api_config).await.map_err(|error| match &error {
        skytale_api::ServeError::Bind { source, .. } if source.kind() == ErrorKind::AddrInUse => {
            CommandError::PortTaken { flag: "--api-port", error: error.to_string() }
        }
        _ => error.into(),
    })?;
    let relay = async {
        let api_key = dev_key::load_or_create(dir, &args.org, api.storage()).await?;
        let mut config = RelayConfig::new(loopback(args.relay_port), dir.join("relay"));
        config.auth = RelayAuth::key_file(&key_file)?;
        let relay = Relay::start(config).await.map_err(|error| match &error {
            RelayError::Listen { source, .. } if source.kind() == ErrorKind::AddrInUse => {
                CommandError::PortTaken { flag: "--relay-port", error: error.to_string() }
            }
            _ => error.into(),
        })?;
        let components = vec![relay.admin_component(), api.admin_component()];
        let admin = match AdminServer::start_if(args.admin_listen, components).await {
            Ok(admin) => admin,
            Err(error) => {
                relay.shutdown().await;
                return Err(error.into());
            }
        };
        Ok::<_, CommandError>((relay, admin, api_key))
    }
    .await;
    match relay {
        Ok((relay, admin, api_key)) => Ok((DevStack { api, relay, admin }, api_key)),
        Err(error) => {
            if let Err(stop_error) = api.shutdown().await {
                tracing::error!(%stop_error, "stopping the API server");
            }
            Err(error)
        }
    }
}

fn announce_stack(stack: &DevStack, api_key: &str) -> std::io::Result<()> {
    announce::export("SKYTALE_RELAY", &announce::url_for(stack.relay.local_addr()))?;
    announce::export("SKYTALE_API_URL", &announce::url_for(stack.api.local_addr()))?;
    announce::export("SKYTALE_API_KEY", api_key)
}

impl DevStack {
    /// Stops the admin listener, then the relay (its streams end), then the API (its long-polls answer, its
    /// database closes).
    async fn shutdown(self) {
        if let Some(admin) = self.admin {
            admin.shutdown().await;
        }
        self.relay.shutdown().await;
        if let Err(error) = self.api.shutdown().await {
            tracing::error!(%error, "stopping the API server");
        }
    }
}
