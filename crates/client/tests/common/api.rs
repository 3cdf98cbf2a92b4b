//! A real skytale-api server in-process (SQLite in a temp dir, own runtime), restartable on the same port and
//! database, plus clients configured to use it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use skytale_api::{Api, ApiConfig, ApiHandle};
use skytale_client::{Client, ClientConfig};
use tempfile::TempDir;

use super::TestRelay;

pub struct TestApi {
    runtime: tokio::runtime::Runtime,
    handle: Option<ApiHandle>,
    addr: SocketAddr,
    dir: TempDir,
}

impl TestApi {
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// Starts with `adjust`ed settings.
    pub fn start_with(adjust: impl FnOnce(&mut ApiConfig)) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = ApiConfig::in_data_dir(dir.path(), "127.0.0.1:0".parse().unwrap());
        adjust(&mut config);
        let handle = runtime.block_on(Api::start(config)).unwrap();
        let addr = handle.local_addr();
        Self { runtime, handle: Some(handle), addr, dir }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API's token signing key, for a relay to verify the tokens it issues (`RelayAuth::key_file`).
    pub fn key_file(&self) -> PathBuf {
        ApiConfig::in_data_dir(self.dir.path(), self.addr).key_file
    }

    /// A new account in `org` and its API key.
    pub fn api_key(&self, org: &str, account: &str) -> String {
        let handle = self.handle.as_ref().expect("API is running");
        self.runtime.block_on(skytale_api::create_account_with_key(handle.storage(), org, account)).unwrap().secret
    }

    pub fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.runtime.block_on(handle.shutdown()).unwrap();
        }
    }

    /// Starts again on the same address and database.
    pub fn resume(&mut self) {
        let config = ApiConfig::in_data_dir(self.dir.path(), self.addr);
        self.handle = Some(self.runtime.block_on(Api::start(config)).unwrap());
    }

    /// How many join requests for `channel` are waiting, as the member holding `api_key` sees them.
    pub fn pending_joins(&self, api_key: &str, channel: &str) -> usize {
        let url = format!("{}/v1/channels/joins", self.url());
        self.runtime.block_on(async {
            let response = reqwest::Client::new()
                .get(url)
                .bearer_auth(api_key)
                .query(&[("channel", channel), ("wait", "0")])
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            let body: serde_json::Value = response.json().await.unwrap();
            body["joins"].as_array().map_or(0, Vec::len)
        })
    }

    /// Waits until `count` join requests are pending for `channel` (bounded by [`super::WAIT`]).
    pub fn await_pending_joins(&self, api_key: &str, channel: &str, count: usize) {
        let deadline = std::time::Instant::now() + super::WAIT;
        while self.pending_joins(api_key, channel) < count {
            assert!(std::time::Instant::now() < deadline, "{count} join requests never became pending");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestApi {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn api_config(relay: &TestRelay, api: &TestApi, dir: &Path, identity: &str, api_key: &str) -> ClientConfig {
    ClientConfig { api_key: Some(api_key.to_owned()), api_url: Some(api.url()), ..super::config(relay, dir, identity) }
}

/// A client using `api` with `api_key`, in its own data_dir (kept alive by the returned TempDir).
pub fn api_client(relay: &TestRelay, api: &TestApi, identity: &str, api_key: &str) -> (Client, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let client = Client::connect(api_config(relay, api, dir.path(), identity, api_key)).unwrap();
    (client, dir)
}
