//! The public, blocking client: opens a data_dir, connects to the relay, and creates/joins/reopens channels.
//!
//! Every public method blocks on the client's own tokio runtime, so callers (the Python bindings) can use it
//! from any thread without an event loop; `Client` and `Channel` are cheap clones of shared handles.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use mls_rs::ExtensionList;
use skytale_proto::ChannelName;

use crate::channel::Channel;
use crate::context::Context;
use crate::error::Error;
use crate::mls::{build_client, mls_err, MlsGroup};
use crate::state::ChannelState;
use crate::store::{ChannelRecord, ChannelStatus, Store};
use crate::transport::Relay;
use crate::{identity, state::Lifecycle};

/// Longest identity rendered into the client's SLIM source name.
const SOURCE_NAME_HEX_LEN: usize = 64;

/// How to start a client.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Relay URL, `http://host:port` (plain, loopback) or `https://...`.
    pub endpoint: String,
    /// Directory holding the signing key, MLS state and channel registry (created if missing).
    pub data_dir: PathBuf,
    /// This agent's identity bytes (non-empty).
    pub identity: Vec<u8>,
    /// Stored for the API/auth integration; not used by the core yet.
    pub api_key: Option<String>,
    /// Stored for the API/auth integration; not used by the core yet.
    pub api_url: Option<String>,
}

pub(crate) struct ClientCore {
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    pub ctx: Arc<Context>,
    pub config: ClientConfig,
}

impl ClientCore {
    /// Runs `future` to completion on the client's runtime from a plain (non-async) thread.
    pub fn block_on<T>(&self, future: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Runtime("blocking client call made from inside an async runtime; call it from a plain thread".into()));
        }
        self.handle.block_on(future)
    }
}

impl Drop for ClientCore {
    fn drop(&mut self) {
        self.ctx.relay.shutdown();
        if let Some(runtime) = self.runtime.lock().ok().and_then(|mut r| r.take()) {
            // Never blocks, so dropping the last handle is safe from any context.
            runtime.shutdown_background();
        }
    }
}

/// A connected Skytale client.
#[derive(Clone)]
pub struct Client {
    core: Arc<ClientCore>,
}

fn source_name(identity: &[u8]) -> Result<skytale_proto::pb::Name, Error> {
    let mut hex_identity = hex::encode(identity);
    hex_identity.truncate(SOURCE_NAME_HEX_LEN);
    Ok(ChannelName::parse(&format!("skytale/agent/{hex_identity}"))?.to_slim())
}

fn create_private_dir(dir: &std::path::Path) -> Result<(), Error> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| Error::Runtime(format!("cannot create data_dir {}: {e}", dir.display())))
}

impl Client {
    /// Opens `config.data_dir`, connects to the relay (failing with `Error::Transport` within about 5 s if it is
    /// unreachable) and resubscribes every channel in the registry from where it stopped.
    pub fn connect(config: ClientConfig) -> Result<Client, Error> {
        if config.identity.is_empty() {
            return Err(Error::Runtime("identity must not be empty".into()));
        }
        create_private_dir(&config.data_dir)?;
        let key = identity::load_or_create(&config.data_dir, &config.identity)?;
        let store = Store::open(&config.data_dir.join("state.db"))?;
        let mls = build_client(&key, &config.data_dir.join("keys.db"), store.clone())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("skytale-client")
            .enable_all()
            .build()
            .map_err(|e| Error::Runtime(format!("cannot start runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let relay = runtime.block_on(Relay::connect(&config.endpoint, source_name(&config.identity)?));
        let relay = match relay {
            Ok(relay) => relay,
            Err(e) => {
                runtime.shutdown_background();
                return Err(e);
            }
        };
        let ctx = Arc::new(Context::new(config.identity.clone(), store.clone(), mls, relay));
        let core = Arc::new(ClientCore { runtime: Mutex::new(Some(runtime)), handle, ctx: ctx.clone(), config });
        core.block_on(async {
            for record in store.channels()? {
                let name = ChannelName::parse(&record.name)?;
                let group = ctx.mls.load_group(&record.group_id).map_err(mls_err("cannot load stored group"))?;
                let active = record.status == ChannelStatus::Active;
                let state = ChannelState::new(name, ctx.clone(), group, record);
                ctx.channels()?.insert(state.name.to_string(), state.clone());
                if active {
                    state.start(false).await?;
                }
            }
            Ok(())
        })?;
        Ok(Client { core })
    }

    /// The configuration this client was started with (`api_key`/`api_url` are kept for the auth integration).
    pub fn config(&self) -> ClientConfig {
        self.core.config.clone()
    }

    /// This client's identity bytes.
    pub fn identity(&self) -> Vec<u8> {
        self.core.ctx.identity.clone()
    }

    /// Creates a new channel with this client as its only member.
    pub fn create_channel(&self, name: &str) -> Result<Channel, Error> {
        let name = ChannelName::parse(name)?;
        let ctx = &self.core.ctx;
        let group = ctx
            .mls
            .create_group(ExtensionList::default(), ExtensionList::default(), None)
            .map_err(mls_err("cannot create group"))?;
        let state = self.core.block_on(self.install(name, group))?;
        Ok(Channel::new(self.core.clone(), state))
    }

    /// Generates a one-use key package (MLSMessage bytes) for an existing member's `add_member`.
    pub fn generate_key_package(&self) -> Result<Vec<u8>, Error> {
        let message = self
            .core
            .ctx
            .mls
            .generate_key_package_message(ExtensionList::default(), ExtensionList::default(), None)
            .map_err(mls_err("cannot generate key package"))?;
        message.to_bytes().map_err(mls_err("cannot encode key package"))
    }

    /// Joins `name` with the Welcome an existing member got from `add_member`.
    pub fn join_channel(&self, name: &str, welcome: &[u8]) -> Result<Channel, Error> {
        let name = ChannelName::parse(name)?;
        let welcome = mls_rs::MlsMessage::from_bytes(welcome).map_err(mls_err("malformed Welcome"))?;
        let (group, _) = self.core.ctx.mls.join_group(None, &welcome, None).map_err(mls_err("cannot join with this Welcome"))?;
        let state = self.core.block_on(self.install(name, group))?;
        Ok(Channel::new(self.core.clone(), state))
    }

    /// Registers a new group under `name`, persists it and subscribes it. A freshly created group must not find
    /// messages at the relay: that would be someone else's channel of the same name.
    async fn install(&self, name: ChannelName, mut group: MlsGroup) -> Result<Arc<ChannelState>, Error> {
        let ctx = &self.core.ctx;
        if ctx.is_closed() {
            return Err(Error::Runtime("client is closed".into()));
        }
        let created = group.current_epoch() == 0;
        let record = ChannelRecord {
            name: name.to_string(),
            group_id: group.group_id().to_vec(),
            applied_seq: 0,
            join_epoch: group.current_epoch(),
            status: ChannelStatus::Active,
        };
        let state = {
            let mut channels = ctx.channels()?;
            if channels.contains_key(name.as_str()) {
                return Err(Error::Channel(format!("channel already exists: {name}")));
            }
            group.write_to_storage().map_err(mls_err("cannot save group state"))?;
            ctx.store.persist(&record, &[])?;
            let state = ChannelState::new(name.clone(), ctx.clone(), group, record.clone());
            channels.insert(name.to_string(), state.clone());
            state
        };
        let relay_epoch = match state.start(true).await {
            Ok(epoch) => epoch,
            Err(e) => {
                self.discard(&state, &record).await;
                return Err(e);
            }
        };
        if created && relay_epoch.is_some() {
            self.discard(&state, &record).await;
            return Err(Error::Channel(format!("channel already exists on the relay: {name}")));
        }
        Ok(state)
    }

    async fn discard(&self, state: &ChannelState, record: &ChannelRecord) {
        let ctx = &self.core.ctx;
        ctx.relay.unsubscribe(&state.name).await;
        state.progress.send_modify(|p| p.lifecycle = Lifecycle::Left);
        if let Ok(mut channels) = ctx.channels() {
            channels.remove(state.name.as_str());
        }
        if let Err(e) = ctx.store.delete_channel(&record.name, &record.group_id) {
            tracing::warn!(channel = %state.name, error = %e, "cannot discard channel");
        }
    }

    /// Names of every channel in the registry (including ones this client was removed from).
    pub fn channels(&self) -> Vec<String> {
        let mut names: Vec<String> = self.core.ctx.channels().map(|c| c.keys().cloned().collect()).unwrap_or_default();
        names.sort();
        names
    }

    /// A handle to a channel in the registry.
    pub fn open_channel(&self, name: &str) -> Result<Channel, Error> {
        let name = ChannelName::parse(name)?;
        let state = self.core.ctx.channel(name.as_str())?.ok_or_else(|| Error::Channel(format!("unknown channel: {name}")))?;
        Ok(Channel::new(self.core.clone(), state))
    }

    /// Largest plaintext `send` accepts (the relay's negotiated payload limit).
    pub fn max_payload(&self) -> usize {
        self.core.ctx.relay.max_payload()
    }

    /// Stops the relay stream and all background work. Idempotent; every `recv` then returns `Recv::Closed`.
    pub fn close(&self) {
        self.core.ctx.closed.send_replace(true);
        self.core.ctx.relay.shutdown();
    }
}
