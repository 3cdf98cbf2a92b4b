//! The public, blocking client: opens a data_dir, connects to the relay, and creates/joins/reopens channels.
//!
//! Every public method blocks on the client's own tokio runtime (see `runtime`), so callers (the Python bindings)
//! can use it from any thread without an event loop; `Client` and `Channel` are cheap clones of shared handles.
//!
//! With an API (`api_url` + `api_key`), the relay stream is authenticated with JWTs from the API, created
//! channels are registered there and owned (this client admits invite joiners, see `admission`), and
//! `invite` / `join_with_token` run the invite flow.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mls_rs::ExtensionList;
use skytale_dir_lock::{DirLock, LockError};
use skytale_proto::ChannelName;

use crate::api::ApiClient;
use crate::channel::Channel;
use crate::context::Context;
use crate::credentials::Credentials;
use crate::error::Error;
use crate::frames::StartPoint;
use crate::identity::MemberProver;
use crate::mls::{build_client, mls_err, MlsGroup};
use crate::runtime::{block_on_interruptible, new_runtime, ClientCore};
use crate::state::ChannelState;
use crate::store::{ChannelRecord, ChannelStatus, Store};
use crate::tls::TrustRoots;
use crate::transport::{Endpoints, Relay, RelayAccess};
use crate::{admission, identity, inbound, joining, state::Lifecycle};

/// Longest identity rendered into the client's SLIM source name.
const SOURCE_NAME_HEX_LEN: usize = 64;

/// How to start a client.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Relay URL, `http://host:port` (plain, loopback) or `https://...` (TLS: web roots plus the PEM CAs in
    /// `SKYTALE_CA_FILE`, if set); or several, separated by commas, for failover: the client links to the first one
    /// that answers and moves to the next whenever its link fails, is lost or the relay drains (docs/client.md,
    /// "Relay endpoints and failover"). One URL in front of several relays (a load balancer) works as one relay.
    pub endpoint: String,
    /// Directory holding the signing key, MLS state and channel registry (created if missing).
    pub data_dir: PathBuf,
    /// This agent's identity bytes (non-empty).
    pub identity: Vec<u8>,
    /// `sk_live_...` API key: exchanged for relay JWTs, and used for channel registration, invites and joins.
    /// Needs `api_url`. Without it the relay stream is anonymous (a relay run with `--auth none`).
    pub api_key: Option<String>,
    /// API server URL (`http://` or `https://`, same TLS rules as `endpoint`).
    pub api_url: Option<String>,
}

/// A connected Skytale client.
#[derive(Clone)]
pub struct Client {
    core: Arc<ClientCore>,
    config: Arc<ClientConfig>,
}

fn source_name(identity: &[u8]) -> Result<skytale_proto::pb::Name, Error> {
    let mut hex_identity = hex::encode(identity);
    hex_identity.truncate(SOURCE_NAME_HEX_LEN);
    Ok(ChannelName::parse(&format!("skytale/agent/{hex_identity}"))?.to_slim())
}

/// The API client, if configured; an API key without an API URL is a configuration error.
fn api_client(config: &ClientConfig, roots: &TrustRoots) -> Result<Option<Arc<ApiClient>>, Error> {
    match (&config.api_url, &config.api_key) {
        (Some(url), Some(key)) => Ok(Some(Arc::new(ApiClient::new(url, key, roots)?))),
        (None, Some(_)) => {
            Err(Error::Auth("api_key is set but api_url is not: set api_url to the Skytale API server".into()))
        }
        (_, None) => Ok(None),
    }
}

fn create_private_dir(dir: &std::path::Path) -> Result<(), Error> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| Error::DataDir(format!("cannot create {}: {e}", dir.display())))
}

/// Reopens every channel of the registry: subscribes each from where it stopped, then asks the relay how far
/// each log goes, all at once. A channel created here whose GroupInfo never reached the relay is announced; one
/// whose log the relay does not have (its data was reset) is lost, and says so on every use.
async fn reopen_channels(core: &ClientCore, store: &Store) -> Result<(), Error> {
    let ctx = &core.ctx;
    let mut reopened = Vec::new();
    for record in store.channels()? {
        let name = ChannelName::parse(&record.name)?;
        let group = ctx.mls.load_group(&record.group_id).map_err(mls_err("cannot load stored group"))?;
        let active = record.status == ChannelStatus::Active;
        let (owner, applied_seq) = (record.owner, record.applied_seq);
        // Created here, at epoch 0 with nothing applied: the process may have stopped before the GroupInfo that
        // creates the channel at the relay was stored.
        let maybe_unannounced = owner && record.join_epoch == 0 && applied_seq == 0;
        let state = ChannelState::new(name, ctx.clone(), group, record);
        core.channels.lock()?.insert(state.name.to_string(), state.clone());
        if active {
            inbound::start(&state, false).await?;
            reopened.push((state, maybe_unannounced, applied_seq, owner));
        }
    }
    let heads = reopened.iter().map(|(state, ..)| ctx.relay.head(&state.name, StartPoint::Seq(1)));
    let heads = futures::future::join_all(heads).await;
    for ((state, maybe_unannounced, applied_seq, owner), head) in reopened.into_iter().zip(heads) {
        match head {
            Ok(0) if maybe_unannounced => state.announce().await?,
            // A member has applied at least the commit that added it, or the GroupInfo that created the channel.
            Ok(head) if head == 0 || head < applied_seq => {
                tracing::warn!(channel = %state.name, head, applied_seq, "the relay does not have this channel's log");
                ctx.relay.unsubscribe(&state.name).await;
                state.progress.send_modify(|p| p.lifecycle = Lifecycle::Lost);
                continue;
            }
            Ok(_) => {}
            // The subscription reports what is wrong with the channel, if anything.
            Err(error) => tracing::warn!(channel = %state.name, %error, "cannot ask the relay how far the log goes"),
        }
        if let (true, Some(api)) = (owner, &ctx.api) {
            admission::ensure_running(&state, api)?;
        }
    }
    Ok(())
}

/// Creating `name` found another group's channel of that name at the relay.
fn taken_at_relay(name: &ChannelName, data_dir: &std::path::Path) -> Error {
    Error::Channel(format!(
        "channel already exists on the relay: {name} is another MLS group's (if it was this identity's, its state is \
         in another data_dir than {}; otherwise pick another name, or join it with an invite)",
        data_dir.display()
    ))
}

/// One process, and one client, per data_dir: two writers of one MLS state break its channels for good.
fn lock_data_dir(dir: &std::path::Path) -> Result<DirLock, Error> {
    DirLock::acquire(dir).map_err(|error| match error {
        LockError::Held { .. } => Error::DataDir(format!(
            "{error}; a data_dir belongs to one client at a time: close the other client, or give this one its own \
             data_dir (the data_dir argument, or SKYTALE_DATA_DIR)"
        )),
        LockError::Io { .. } => Error::DataDir(error.to_string()),
    })
}

impl Client {
    /// Opens `config.data_dir`, connects to the relay (failing with `Error::Transport` within about 5 s per
    /// endpoint if none answers) and resubscribes every channel in the registry from where it stopped. A malformed
    /// endpoint list fails first, before anything is opened.
    pub fn connect(config: ClientConfig) -> Result<Client, Error> {
        if config.identity.is_empty() {
            return Err(Error::Runtime("identity must not be empty".into()));
        }
        let endpoints = Endpoints::parse(&config.endpoint)?;
        let roots = TrustRoots::from_env()?;
        let api = api_client(&config, &roots)?;
        create_private_dir(&config.data_dir)?;
        let data_dir_lock = lock_data_dir(&config.data_dir)?;
        let key = identity::load_or_create(&config.data_dir, &config.identity)?;
        let store = Store::open(&config.data_dir.join("state.db"))?;
        let mls = build_client(&key, &config.data_dir.join("keys.db"), store.clone())?;
        let runtime = new_runtime()?;
        let access = RelayAccess {
            endpoints,
            source: source_name(&config.identity)?,
            roots,
            credentials: api.clone().map(|api| Arc::new(Credentials::new(api))),
            member: MemberProver::new(&key),
        };
        let relay = block_on_interruptible(runtime.handle(), Relay::connect(access));
        let relay = match relay {
            Ok(relay) => relay,
            Err(e) => {
                runtime.shutdown_background();
                return Err(e);
            }
        };
        let ctx =
            Arc::new(Context::new(config.identity.clone(), config.data_dir.clone(), store.clone(), mls, relay, api));
        let core = Arc::new(ClientCore::new(runtime, ctx.clone(), data_dir_lock));
        core.block_on(reopen_channels(&core, &store))?;
        Ok(Client { core, config: Arc::new(config) })
    }

    /// The configuration this client was started with.
    pub fn config(&self) -> ClientConfig {
        ClientConfig::clone(&self.config)
    }

    /// This client's identity bytes.
    pub fn identity(&self) -> Vec<u8> {
        self.core.ctx.identity.clone()
    }

    /// Creates a new channel with this client as its only member and owner. With an API, the channel is first
    /// registered there (under this account's org) and this client starts admitting invite joiners.
    pub fn create_channel(&self, name: &str) -> Result<Channel, Error> {
        let name = ChannelName::parse(name)?;
        let ctx = &self.core.ctx;
        if let Some(api) = &ctx.api {
            self.core.block_on(async { Ok(api.register_channel(name.as_str()).await?) })?;
        }
        let group = ctx
            .mls
            .create_group(ExtensionList::default(), ExtensionList::default(), None)
            .map_err(mls_err("cannot create group"))?;
        let state = self.core.block_on(self.install(name, group, true))?;
        if let Some(api) = &ctx.api {
            self.core.block_on(async { admission::ensure_running(&state, api) })?;
        }
        Ok(Channel::new(self.core.clone(), state))
    }

    /// Creates an invite token (`skt_inv_...`) for `channel`, usable `max_uses` times within `ttl`. This client
    /// then owns the channel: it admits the joiners that redeem the token, also after a restart.
    pub fn invite(&self, channel: &str, max_uses: u32, ttl: Duration) -> Result<String, Error> {
        let name = ChannelName::parse(channel)?;
        let api = self.api("invite")?;
        let state =
            self.core.channels.get(name.as_str())?.ok_or_else(|| Error::Channel(format!("unknown channel: {name}")))?;
        state.ensure_active()?;
        self.core.block_on(async {
            let token = api.create_invite(name.as_str(), max_uses, ttl).await?;
            state.become_owner().await?;
            admission::ensure_running(&state, &api)?;
            Ok(token)
        })
    }

    /// Joins `channel` with an invite token: posts a fresh key package to the API, waits (pushed by the API's
    /// long-poll) until the channel's owner admits it, refreshes the relay token so the new grant applies, and
    /// joins with the Welcome. Gives up with a transport error after `timeout`.
    pub fn join_with_token(&self, channel: &str, token: &str, timeout: Duration) -> Result<Channel, Error> {
        let name = ChannelName::parse(channel)?;
        let api = self.api("join_with_token")?;
        if self.core.channels.get(name.as_str())?.is_some() {
            return Err(Error::Channel(format!("channel already exists: {name}")));
        }
        let key_package = self.generate_key_package()?;
        let welcome = self.core.block_on(joining::wait_for_welcome(
            &api,
            &name,
            token,
            &self.core.ctx.identity,
            &key_package,
            timeout,
        ))?;
        self.core.block_on(self.core.ctx.relay.refresh_token())?;
        self.join_channel(name.as_str(), &welcome)
    }

    fn api(&self, operation: &str) -> Result<Arc<ApiClient>, Error> {
        self.core
            .ctx
            .api
            .clone()
            .ok_or_else(|| Error::Auth(format!("{operation} needs the API: set api_url and api_key")))
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
        // Checked before joining, which uses up the key package the Welcome was made for: a Welcome tried on a
        // mistyped name stays good for the right one.
        let group_info =
            self.core.ctx.mls.examine_welcome_message(&welcome).map_err(mls_err("cannot join with this Welcome"))?;
        self.core.block_on(self.check_welcome_is_for(&name, group_info.group_context().epoch()))?;
        let (group, _) =
            self.core.ctx.mls.join_group(None, &welcome, None).map_err(mls_err("cannot join with this Welcome"))?;
        let state = self.core.block_on(self.install(name, group, false))?;
        Ok(Channel::new(self.core.clone(), state))
    }

    /// Refuses a Welcome into `join_epoch` for a channel without the commit that made that epoch: the commit that
    /// added us is stored (in epoch `join_epoch - 1`) before the Welcome is handed out, so a log that does not reach
    /// it (a mistyped name has none) is another channel's. `install` checks the epoch again once joined.
    async fn check_welcome_is_for(&self, name: &ChannelName, join_epoch: u64) -> Result<(), Error> {
        let commit_epoch = join_epoch.saturating_sub(1);
        if self.core.ctx.relay.head(name, StartPoint::Epoch(commit_epoch)).await? == 0 {
            return Err(Error::Channel(format!(
                "the Welcome is not for channel {name}: it joins at epoch {join_epoch}, and the relay has no commit \
                 into that epoch for {name}; check the channel name (the Welcome was not used, so it still joins \
                 its own channel)"
            )));
        }
        Ok(())
    }

    /// Registers a new group under `name`, persists it and subscribes it. A freshly created group must not find
    /// messages at the relay: that would be someone else's channel of the same name. A joined group must find the
    /// relay at least at its join epoch (the commit that added us is stored before the Welcome is handed out):
    /// an empty or older channel means the Welcome was for another channel.
    async fn install(&self, name: ChannelName, mut group: MlsGroup, owner: bool) -> Result<Arc<ChannelState>, Error> {
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
            owner,
        };
        let state = {
            let mut channels = self.core.channels.lock()?;
            if let Some(held) = channels.get(name.as_str()) {
                return Err(match held.lifecycle() {
                    Lifecycle::Lost => held.lost_error(),
                    _ => Error::Channel(format!("channel already exists: {name}")),
                });
            }
            group.write_to_storage().map_err(mls_err("cannot save group state"))?;
            ctx.store.persist(&record, &[])?;
            let state = ChannelState::new(name.clone(), ctx.clone(), group, record.clone());
            channels.insert(name.to_string(), state.clone());
            state
        };
        let relay_epoch = match inbound::start(&state, true).await {
            Ok(epoch) => epoch,
            Err(e) => {
                self.discard(&state, &record).await;
                // With auth on, a relay refuses a non-member's subscription to a channel that exists.
                let taken = created && matches!(&e, Error::Auth(m) if m.contains(skytale_proto::meta::NOT_A_MEMBER));
                return Err(if taken { taken_at_relay(&name, &ctx.data_dir) } else { e });
            }
        };
        if created && relay_epoch.is_some() {
            self.discard(&state, &record).await;
            return Err(taken_at_relay(&name, &ctx.data_dir));
        }
        if created {
            if let Err(e) = state.announce().await {
                self.discard(&state, &record).await;
                return Err(e);
            }
        }
        if !created && relay_epoch.is_none_or(|epoch| epoch < record.join_epoch) {
            self.discard(&state, &record).await;
            let found = relay_epoch.map_or("no messages".to_owned(), |epoch| format!("epoch {epoch}"));
            return Err(Error::Channel(format!(
                "the Welcome is not for channel {name}: it joins at epoch {}, but the relay has {found} for {name}",
                record.join_epoch
            )));
        }
        Ok(state)
    }

    async fn discard(&self, state: &ChannelState, record: &ChannelRecord) {
        let ctx = &self.core.ctx;
        ctx.relay.unsubscribe(&state.name).await;
        state.progress.send_modify(|p| p.lifecycle = Lifecycle::Left);
        if let Ok(mut channels) = self.core.channels.lock() {
            channels.remove(state.name.as_str());
        }
        if let Err(e) = ctx.store.delete_channel(&record.name, &record.group_id) {
            tracing::warn!(channel = %state.name, error = %e, "cannot discard channel");
        }
    }

    /// Names of every channel in the registry (including ones this client was removed from); none once closed.
    pub fn channels(&self) -> Vec<String> {
        let mut names: Vec<String> = self.core.channels.lock().map(|c| c.keys().cloned().collect()).unwrap_or_default();
        names.sort();
        names
    }

    /// A handle to a channel in the registry.
    pub fn open_channel(&self, name: &str) -> Result<Channel, Error> {
        let name = ChannelName::parse(name)?;
        // A closed client has let go of its channel table (see `ClientCore::close`).
        if self.core.ctx.is_closed() {
            return Err(Error::Runtime("client is closed".into()));
        }
        let state =
            self.core.channels.get(name.as_str())?.ok_or_else(|| Error::Channel(format!("unknown channel: {name}")))?;
        Ok(Channel::new(self.core.clone(), state))
    }

    /// Whether the client has a stream to the relay right now. While it has none (the relay is down or
    /// unreachable), it reconnects on its own; `recv` then has nothing new to give, and sends wait.
    pub fn is_connected(&self) -> bool {
        !self.core.ctx.is_closed() && self.core.ctx.relay.is_connected()
    }

    /// Calls `on_change(connected)` each time the stream to the relay comes up or goes down, in place of the
    /// previous callback; `None` removes it. It runs on one of the client's runtime threads, so it must return
    /// quickly and never wait for this client. Nothing is reported once `close` has begun.
    pub fn on_connection_change(&self, on_change: Option<Box<dyn Fn(bool) + Send>>) -> Result<(), Error> {
        if self.core.is_closing() {
            return Err(Error::Runtime("client is closed".into()));
        }
        let relay = &self.core.ctx.relay;
        self.core.replace_connection_watch(on_change.map(|on_change| relay.watch_connection(on_change)));
        Ok(())
    }

    /// The relay's limit on one encrypted MLS message, as it announced on the current (or last) stream. The
    /// largest payload `send` accepts is smaller by the encryption's overhead (padding costs up to a quarter);
    /// a refused send names it.
    pub fn max_payload(&self) -> usize {
        self.core.ctx.relay.max_payload()
    }

    /// Stops the relay stream and all background work and joins the runtime's threads. Idempotent; every `recv`
    /// then returns `Recv::Closed` and every other call fails with "client is closed".
    pub fn close(&self) {
        self.core.close();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Weak;
    use std::time::Instant;

    use skytale_relay::{Relay, RelayConfig, RelayHandle};
    use tempfile::TempDir;

    use super::*;

    /// A relay on loopback. It runs on its own runtime: the client's blocking calls must not run inside one.
    struct LoopbackRelay {
        handle: RelayHandle,
        _runtime: tokio::runtime::Runtime,
        _dir: TempDir,
    }

    impl LoopbackRelay {
        fn start() -> Self {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            let dir = tempfile::tempdir().unwrap();
            let config = RelayConfig::new("127.0.0.1:0".parse().unwrap(), dir.path());
            let handle = runtime.block_on(Relay::start(config)).unwrap();
            Self { handle, _runtime: runtime, _dir: dir }
        }
    }

    /// A client that created a channel and sent on it, and a weak reference to its store.
    fn client_with_a_channel(relay: &LoopbackRelay, data_dir: &TempDir) -> (Client, Channel, Weak<Store>) {
        let client = Client::connect(ClientConfig {
            endpoint: format!("http://{}", relay.handle.local_addr()),
            data_dir: data_dir.path().to_path_buf(),
            identity: b"agent-a".to_vec(),
            api_key: None,
            api_url: None,
        })
        .unwrap();
        let store = Arc::downgrade(&client.core.ctx.store);
        let channel = client.create_channel("acme/lifecycle/general").unwrap();
        channel.send(b"one message").unwrap();
        (client, channel, store)
    }

    #[test]
    fn a_closed_client_frees_its_store() {
        let relay = LoopbackRelay::start();
        let data_dir = tempfile::tempdir().unwrap();
        let (client, channel, store) = client_with_a_channel(&relay, &data_dir);
        client.close();
        drop((client, channel));
        assert!(store.upgrade().is_none(), "the store (its SQLite connections) outlived the closed client");
    }

    #[test]
    fn dropping_the_last_handle_frees_the_store() {
        let relay = LoopbackRelay::start();
        let data_dir = tempfile::tempdir().unwrap();
        let (client, channel, store) = client_with_a_channel(&relay, &data_dir);
        drop((client, channel));
        // Without close, the runtime stops in the background: its worker threads drop the tasks that still hold
        // the channel's state (and through it the store) a moment later.
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.upgrade().is_some() {
            assert!(Instant::now() < deadline, "the store (its SQLite connections) outlived the dropped client");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
