//! The `skytale` binary as users run it: started as a process, its address read from the `export` line, talked
//! to over gRPC, stopped with signals.

// The relay's raw SLIM test client and real MLS messages.
#[path = "../../relay/tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};

use common::mls_group::new_group;
use common::{blob, channel, meta, seq, From, Stream};
use skytale_proto::meta as keys;

const EXPORT_PREFIX: &str = "export SKYTALE_RELAY=http://";

/// A running `skytale` process and the relay address it announced.
struct Running {
    child: Child,
    stdout: BufReader<ChildStdout>,
    relay: SocketAddr,
}

fn skytale(args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_skytale"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start skytale");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read the export line");
    let relay = line
        .trim_end()
        .strip_prefix(EXPORT_PREFIX)
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("a socket address");
    Running {
        child,
        stdout,
        relay,
    }
}

impl Running {
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits for the process to exit; returns its status and what it printed after the export line.
    /// Waits on a blocking thread so the test's runtime keeps serving its client connections, which the
    /// relay's graceful shutdown waits for.
    async fn wait(self) -> (ExitStatus, String) {
        let Running {
            mut child,
            mut stdout,
            ..
        } = self;
        tokio::task::spawn_blocking(move || {
            let mut rest = String::new();
            stdout.read_to_string(&mut rest).expect("read stdout");
            (child.wait().expect("wait for skytale"), rest)
        })
        .await
        .expect("waiting thread")
    }
}

fn relay_args(dir: &Path) -> Vec<String> {
    ["relay", "--listen", "127.0.0.1:0", "--data-dir"]
        .iter()
        .map(|s| s.to_string())
        .chain([dir.display().to_string()])
        .collect()
}

fn run(args: &[String]) -> Running {
    skytale(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[tokio::test]
async fn relay_announces_its_address_serves_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = relay_args(dir.path());
    args.extend([
        "--max-payload".into(),
        "2048".into(),
        "--sync".into(),
        "full".into(),
    ]);
    let running = run(&args);

    let mut stream = Stream::open(running.relay).await;
    stream.send(common::link_negotiation("cli")).await;
    assert_eq!(meta(&stream.recv().await, keys::MAX_PAYLOAD), Some("2048"));

    running.signal("TERM");
    let (status, rest) = running.wait().await;
    assert!(status.success(), "{status}");
    assert_eq!(rest, "", "exactly one line on stdout");
}

#[tokio::test]
async fn acknowledged_messages_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let ch = channel("acme/team/crash");
    let mut group = new_group(false);
    let blobs = vec![
        group.application(b"one"),
        group.commit(),
        group.application(b"two"),
    ];

    let running = run(&relay_args(dir.path()));
    let mut publisher = Stream::open(running.relay).await;
    for (i, b) in blobs.iter().enumerate() {
        assert_eq!(
            publisher.publish_ok(&ch, &format!("m{i}"), b.clone()).await,
            i as u64 + 1
        );
    }
    running.signal("KILL");
    let (status, _) = running.wait().await;
    assert!(!status.success());

    let running = run(&relay_args(dir.path()));
    let mut reader = Stream::open(running.relay).await;
    reader.subscribe_ok(&ch, 1, From::Seq(1)).await;
    let stored = reader.deliveries(3).await;
    assert_eq!(stored.iter().map(seq).collect::<Vec<_>>(), [1, 2, 3]);
    for (delivery, sent) in stored.iter().zip(&blobs) {
        assert_eq!(blob(delivery), sent.as_slice());
    }
    running.signal("TERM");
    assert!(running.wait().await.0.success());
}

#[tokio::test]
async fn dev_runs_the_relay_on_loopback_under_its_directory_and_stops_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().display().to_string();
    let running = skytale(&["dev", "--dir", &dir_arg, "--relay-port", "0"]);
    assert!(running.relay.ip().is_loopback());
    assert!(dir
        .path()
        .join("relay")
        .join(skytale_relay::DB_FILE)
        .exists());

    let mut stream = Stream::open(running.relay).await;
    stream.send(common::link_negotiation("dev")).await;
    assert!(meta(&stream.recv().await, keys::MAX_PAYLOAD).is_some());

    running.signal("INT");
    assert!(running.wait().await.0.success());
}

#[test]
fn bad_arguments_are_refused_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_skytale"))
        .args(["relay", "--retention", "7w"])
        .output()
        .expect("run skytale");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs a unit"), "{stderr}");
}
