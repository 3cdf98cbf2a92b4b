//! The relay and the Rust clients the client-API benchmarks (`throughput`, `group-scaling`) run against: an
//! in-process relay on 127.0.0.1:0 with a temporary log and auth off, or one the caller names with `--relay`.

use std::time::{SystemTime, UNIX_EPOCH};

use skytale_client::{Channel, Client, ClientConfig};
use skytale_relay::{Relay, RelayConfig, RelayHandle};

/// A relay to connect clients to, and the temporary directories of the clients connected so far.
pub struct Site {
    endpoint: String,
    /// The in-process relay with the runtime serving it (`None` with `--relay`).
    local: Option<(tokio::runtime::Runtime, RelayHandle)>,
    _relay_dir: Option<tempfile::TempDir>,
    client_dirs: tempfile::TempDir,
    /// Distinguishes the channels and identities of one run from those of earlier runs on the same relay.
    run_id: String,
}

impl Site {
    /// Starts an in-process relay, or uses `relay_url` when given.
    pub fn start(relay_url: Option<String>) -> anyhow::Result<Site> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let run_id = format!("{:x}", nanos % (1 << 48));
        let client_dirs = tempfile::tempdir()?;
        if let Some(endpoint) = relay_url {
            return Ok(Site { endpoint, local: None, _relay_dir: None, client_dirs, run_id });
        }
        let relay_dir = tempfile::tempdir()?;
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("relay").enable_all().build()?;
        let config = RelayConfig::new("127.0.0.1:0".parse()?, relay_dir.path());
        let relay = runtime.block_on(Relay::start(config))?;
        let endpoint = format!("http://{}", relay.local_addr());
        Ok(Site { endpoint, local: Some((runtime, relay)), _relay_dir: Some(relay_dir), client_dirs, run_id })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A channel name unique to this run.
    pub fn channel_name(&self, label: &str) -> String {
        format!("bench/{label}/{}", self.run_id)
    }

    /// Connects a client with a fresh data_dir and the identity `label` (made unique to this run).
    pub fn client(&self, label: &str) -> anyhow::Result<Client> {
        let identity = format!("{label}-{}", self.run_id);
        Ok(Client::connect(ClientConfig {
            endpoint: self.endpoint.clone(),
            data_dir: self.client_dirs.path().join(&identity),
            identity: identity.into_bytes(),
            api_key: None,
            api_url: None,
        })?)
    }

    /// A channel created by `owner` with every one of `members` joined, added in one commit.
    pub fn group(&self, label: &str, owner: &Client, members: &[Client]) -> anyhow::Result<(Channel, Vec<Channel>)> {
        let name = self.channel_name(label);
        let channel = owner.create_channel(&name)?;
        if members.is_empty() {
            return Ok((channel, Vec::new()));
        }
        let key_packages = members.iter().map(Client::generate_key_package).collect::<Result<Vec<_>, _>>()?;
        let welcome = channel.add_members(&key_packages)?;
        let joined = members.iter().map(|m| m.join_channel(&name, &welcome)).collect::<Result<Vec<_>, _>>()?;
        Ok((channel, joined))
    }

    /// Stops the in-process relay, if any.
    pub fn stop(self) {
        if let Some((runtime, relay)) = self.local {
            runtime.block_on(relay.shutdown());
        }
    }
}
