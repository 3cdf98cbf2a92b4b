//! Test harness: a real skytale-relay on loopback (own runtime, restartable on the same port and log) and
//! clients in temporary data_dirs.
#![allow(dead_code)] // each test binary uses a different subset

pub mod api;
pub mod proxy;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use skytale_client::{Channel, Client, ClientConfig, Message, Recv};
use skytale_relay::{Relay, RelayConfig, RelayHandle};
use tempfile::TempDir;

/// Upper bound for waiting on one message; only guards against a hang, never asserts on timing.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct TestRelay {
    runtime: tokio::runtime::Runtime,
    handle: Option<RelayHandle>,
    addr: SocketAddr,
    dir: TempDir,
}

impl TestRelay {
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    pub fn start_with(adjust: impl FnOnce(&mut RelayConfig)) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = RelayConfig::new("127.0.0.1:0".parse().unwrap(), dir.path());
        adjust(&mut config);
        let handle = runtime.block_on(Relay::start(config)).unwrap();
        let addr = handle.local_addr();
        Self { runtime, handle: Some(handle), addr, dir }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The directory of the relay's log (and its lock, held while the relay runs).
    pub fn log_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.runtime.block_on(handle.shutdown());
        }
    }

    /// Starts again on the same address and the same log.
    pub fn resume(&mut self) {
        self.resume_with(|_| {});
    }

    /// Starts again on the same address and the same log, with `adjust`ed settings.
    pub fn resume_with(&mut self, adjust: impl FnOnce(&mut RelayConfig)) {
        let mut config = RelayConfig::new(self.addr, self.dir.path());
        adjust(&mut config);
        self.handle = Some(self.runtime.block_on(Relay::start(config)).unwrap());
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback address nothing listens on: bound to learn a free port, then released.
pub fn unused_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

pub fn config(relay: &TestRelay, dir: &Path, identity: &str) -> ClientConfig {
    ClientConfig {
        endpoint: relay.endpoint(),
        data_dir: dir.to_path_buf(),
        identity: identity.as_bytes().to_vec(),
        api_key: None,
        api_url: None,
    }
}

/// A client with its own data_dir (kept alive by the returned TempDir).
pub fn client(relay: &TestRelay, identity: &str) -> (Client, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let client = Client::connect(config(relay, dir.path(), identity)).unwrap();
    (client, dir)
}

pub fn reconnect(relay: &TestRelay, dir: &Path, identity: &str) -> Client {
    Client::connect(config(relay, dir, identity)).unwrap()
}

pub fn data_dir(dir: &TempDir) -> PathBuf {
    dir.path().to_path_buf()
}

/// The next message, failing the test on error, close or if nothing arrives within [`WAIT`].
pub fn next(channel: &Channel) -> Message {
    match channel.recv(Some(WAIT)) {
        Ok(Recv::Message(m)) => m,
        other => panic!("expected a message on {}, got {other:?}", channel.name()),
    }
}

pub fn next_text(channel: &Channel) -> String {
    String::from_utf8(next(channel).payload).unwrap()
}

/// Adds `joiner` to `channel` (owned by some other client) and returns the joiner's channel.
pub fn add(channel: &Channel, joiner: &Client) -> Channel {
    let kp = joiner.generate_key_package().unwrap();
    let welcome = channel.add_member(&kp).unwrap();
    joiner.join_channel(&channel.name(), &welcome).unwrap()
}

/// Asserts nothing else is queued (a short wait: a missing message would show up as a failure elsewhere).
pub fn assert_idle(channel: &Channel) {
    match channel.recv(Some(Duration::from_millis(300))) {
        Ok(Recv::Timeout) => {}
        other => panic!("expected nothing more on {}, got {other:?}", channel.name()),
    }
}
