//! `skytale dev`: the local development stack in one process on 127.0.0.1, every store under one directory:
//! the API server (`DIR/api`: SQLite database and signing key), the relay (`DIR/relay`) with JWT auth on,
//! verifying tokens with the API's key read in-process, and a dev account whose API key is kept in
//! `DIR/api-keys/ORG.key`. Auth is on so that what works against `skytale dev` also works against a deployment.
//!
//! stdout gets exactly three lines once both services listen, in this order:
//! `export SKYTALE_RELAY=…`, `export SKYTALE_API_URL=…`, `export SKYTALE_API_KEY=…`. With `--tls`, both serve
//! TLS with a local CA's certificate (`skytale_tls_server::LocalCa`, created under the directory on first use
//! and reused after), the two URLs say `https://`, and a fourth line follows the three:
//! `export SKYTALE_CA_FILE=DIR/ca.pem`, the CA clients must trust. With `--admin-listen`, one admin listener
//! serves both services' health and metrics; its address is logged, not printed. SIGHUP makes both read the
//! signing-key file again (and the certificate, with `--tls`), as `skytale api` and `skytale relay` do.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use skytale_admin::{AdminHandle, AdminServer};
use skytale_api::{Api, ApiConfig, ApiHandle, ServeError};
use skytale_relay::{Relay, RelayAuth, RelayConfig, RelayError, RelayHandle};
use skytale_tls_server::{LocalCa, TlsError};

use super::{default_dir, CommandError};
use crate::args::DevArgs;
use crate::hangup::Hangups;
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
    let hangups = Hangups::register().map_err(CommandError::Signals)?;
    std::fs::create_dir_all(&dir).map_err(|source| RelayError::DataDir { path: dir.clone(), source })?;
    // Held until the stack has stopped: a second stack on this directory would share the API's database and
    // fight over the relay's log.
    let _dir_lock = skytale_dir_lock::DirLock::acquire(&dir).map_err(CommandError::DevDirInUse)?;
    let local_ca = if args.tls { Some(LocalCa::load_or_create(&dir)?) } else { None };
    let (stack, api_key) = start(&dir, &args, local_ca.as_ref()).await?;
    if let Err(error) = announce_stack(&stack, &api_key, local_ca.as_ref()) {
        stack.shutdown().await;
        return Err(CommandError::Stdout(error));
    }
    tracing::info!(dir = %dir.display(), org = args.org, "dev stack running; Ctrl-C to stop");
    hangups.reload_until(terminated, || stack.reload_keys()).await;
    stack.shutdown().await;
    Ok(())
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Starts the API, makes sure the dev key exists, then starts the relay trusting the API's signing key, then the
/// admin listener if asked for; both serve TLS with `local_ca`'s certificate if given. If a later step fails,
/// what already started is stopped again.
async fn start(dir: &Path, args: &DevArgs, local_ca: Option<&LocalCa>) -> Result<(DevStack, String), CommandError> {
    let mut api_config = ApiConfig::in_data_dir(&dir.join("api"), loopback(args.api_port));
    api_config.tls = local_ca.map(|ca| ca.server.clone());
    let key_file = api_config.key_file.clone();
    // The API creates the signing key on first start, so the relay can only read it afterwards.
    let api = Api::start(api_config).await.map_err(|error| match (error, local_ca) {
        (ServeError::Bind { addr, source }, _) if source.kind() == ErrorKind::AddrInUse => {
            CommandError::PortTaken { flag: "--api-port", error: ServeError::Bind { addr, source }.to_string() }
        }
        (ServeError::Tls(error), Some(ca)) => certificate_error(error, ca),
        (error, _) => error.into(),
    })?;
    let relay = async {
        let api_key = dev_key::load_or_create(dir, &args.org, api.storage()).await?;
        let mut config = RelayConfig::new(loopback(args.relay_port), dir.join("relay"));
        config.auth = RelayAuth::key_file(&key_file)?;
        config.max_streams_per_account = args.account_quotas.max_streams_per_account;
        config.publish_rate = args.account_quotas.publish_rate();
        config.tls = local_ca.map(|ca| ca.server.clone());
        let relay = Relay::start(config).await.map_err(|error| match (error, local_ca) {
            (RelayError::Listen { addr, source }, _) if source.kind() == ErrorKind::AddrInUse => {
                CommandError::PortTaken { flag: "--relay-port", error: RelayError::Listen { addr, source }.to_string() }
            }
            (RelayError::Tls(error), Some(ca)) => certificate_error(error, ca),
            (error, _) => error.into(),
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

/// The local CA's files did not load (edited or damaged since they were made): say which, and how to start over.
fn certificate_error(error: TlsError, ca: &LocalCa) -> CommandError {
    let tls_dir = ca.server.cert.parent().unwrap_or(&ca.server.cert).to_owned();
    CommandError::DevCertificate { error, ca_file: ca.ca_file.clone(), tls_dir }
}

/// The three lines scripts read, in their order, then the CA clients must trust with `--tls`.
fn announce_stack(stack: &DevStack, api_key: &str, local_ca: Option<&LocalCa>) -> std::io::Result<()> {
    let tls = local_ca.is_some();
    announce::export("SKYTALE_RELAY", &announce::url_for(stack.relay.local_addr(), tls))?;
    announce::export("SKYTALE_API_URL", &announce::url_for(stack.api.local_addr(), tls))?;
    announce::export("SKYTALE_API_KEY", api_key)?;
    match local_ca {
        Some(ca) => announce::export("SKYTALE_CA_FILE", &ca.ca_file.display().to_string()),
        None => Ok(()),
    }
}

impl DevStack {
    /// The API reads its signing-key file again, then the relay, which trusts that file; each logs what it read,
    /// or keeps its keys and logs why.
    async fn reload_keys(&self) {
        let _ = self.api.reload_signing_keys();
        if let Ok(kids) = self.relay.reload_keys().await {
            tracing::info!(keys = kids.join(" "), "trusted keys read again");
        }
    }

    /// Drains the relay (its streams get their acks, then the `draining` notice), then stops the API (its
    /// long-polls answer, its database closes), then the admin listener, whose `/readyz` answered 503 meanwhile
    /// (docs/operations.md, "Graceful drain").
    async fn shutdown(self) {
        self.relay.shutdown().await;
        if let Err(error) = self.api.shutdown().await {
            tracing::error!(%error, "stopping the API server");
        }
        if let Some(admin) = self.admin {
            admin.shutdown().await;
        }
    }
}
