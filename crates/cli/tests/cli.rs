//! The `skytale` binary as users run it: started as a process, its address read from the `export` line, talked
//! to over gRPC, stopped with signals.

// The relay's raw SLIM test client and real MLS messages.
#[path = "../../relay/tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::Duration;

use common::mls_group::new_group;
use common::{blob, channel, meta, seq, From, Stream};
use skytale_client::{Client, ClientConfig, Recv};
use skytale_proto::meta as keys;

/// A running `skytale` process and the `export` lines it printed first.
struct Running {
    child: Child,
    stdout: BufReader<ChildStdout>,
    exports: Vec<String>,
}

/// Starts `skytale args...` and reads its first `lines` lines of stdout.
fn skytale_printing(args: &[&str], lines: usize) -> Running {
    let mut command = Command::new(env!("CARGO_BIN_EXE_skytale"));
    command.args(args);
    spawn_printing(command, lines)
}

/// Starts `command` (which runs `skytale`) and reads its first `lines` lines of stdout.
fn spawn_printing(mut command: Command, lines: usize) -> Running {
    let mut child = command.env("RUST_LOG", "warn").stdout(Stdio::piped()).spawn().expect("start skytale");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let exports = (0..lines)
        .map(|_| {
            let mut line = String::new();
            stdout.read_line(&mut line).expect("read an export line");
            line.trim_end().to_owned()
        })
        .collect();
    Running { child, stdout, exports }
}

/// Starts a command that announces one service (`skytale relay`, `skytale api`).
fn skytale(args: &[&str]) -> Running {
    skytale_printing(args, 1)
}

/// The value of `export NAME=value` in `line`, failing the test if the line is anything else.
fn exported<'a>(line: &'a str, name: &str) -> &'a str {
    line.strip_prefix("export ")
        .and_then(|rest| rest.strip_prefix(name))
        .and_then(|rest| rest.strip_prefix('='))
        .unwrap_or_else(|| panic!("expected `export {name}=...`, got {line:?}"))
}

fn address_of(url: &str) -> SocketAddr {
    url.strip_prefix("http://").unwrap_or_else(|| panic!("not an http URL: {url}")).parse().expect("a socket address")
}

impl Running {
    /// The relay address of a `skytale relay` process.
    fn relay(&self) -> SocketAddr {
        address_of(exported(&self.exports[0], "SKYTALE_RELAY"))
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill").args(["-s", name, &self.child.id().to_string()]).status().expect("run kill");
        assert!(status.success());
    }

    /// Waits for the process to exit; returns its status and what it printed after the export lines.
    fn wait_blocking(self) -> (ExitStatus, String) {
        let Running { mut child, mut stdout, .. } = self;
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).expect("read stdout");
        (child.wait().expect("wait for skytale"), rest)
    }

    /// [`Running::wait_blocking`] on a blocking thread, so the test's runtime keeps serving its client
    /// connections, which the relay's graceful shutdown waits for.
    async fn wait(self) -> (ExitStatus, String) {
        tokio::task::spawn_blocking(move || self.wait_blocking()).await.expect("waiting thread")
    }
}

/// `skytale relay` on a free port without authentication.
fn relay_args(dir: &Path) -> Vec<String> {
    ["relay", "--listen", "127.0.0.1:0", "--auth", "none", "--data-dir"]
        .iter()
        .map(|s| s.to_string())
        .chain([dir.display().to_string()])
        .collect()
}

fn run(args: &[String]) -> Running {
    skytale(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// A client of the stack in `exports` (`SKYTALE_RELAY`, `SKYTALE_API_URL`, `SKYTALE_API_KEY`).
fn client(relay: &str, api_url: &str, api_key: &str, dir: &Path, identity: &str) -> Client {
    Client::connect(ClientConfig {
        endpoint: relay.to_owned(),
        data_dir: dir.to_path_buf(),
        identity: identity.as_bytes().to_vec(),
        api_key: Some(api_key.to_owned()),
        api_url: Some(api_url.to_owned()),
    })
    .expect("client connects with the printed settings")
}

#[tokio::test]
async fn relay_announces_its_address_serves_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = relay_args(dir.path());
    args.extend(["--max-payload".into(), "2048".into(), "--sync".into(), "full".into()]);
    let running = run(&args);

    let mut stream = Stream::open(running.relay()).await;
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
    let blobs = vec![group.application(b"one"), group.commit(), group.application(b"two")];

    let running = run(&relay_args(dir.path()));
    let mut publisher = Stream::open(running.relay()).await;
    for (i, b) in blobs.iter().enumerate() {
        assert_eq!(publisher.publish_ok(&ch, &format!("m{i}"), b.clone()).await, i as u64 + 1);
    }
    running.signal("KILL");
    let (status, _) = running.wait().await;
    assert!(!status.success());

    let running = run(&relay_args(dir.path()));
    let mut reader = Stream::open(running.relay()).await;
    reader.subscribe_ok(&ch, 1, From::Seq(1)).await;
    let stored = reader.deliveries(3).await;
    assert_eq!(stored.iter().map(seq).collect::<Vec<_>>(), [1, 2, 3]);
    for (delivery, sent) in stored.iter().zip(&blobs) {
        assert_eq!(blob(delivery), sent.as_slice());
    }
    running.signal("TERM");
    assert!(running.wait().await.0.success());
}

/// The relay's open-file limit in the next test: the common default soft limit.
const RELAY_FILE_LIMIT: u32 = 1024;
/// Sockets that connect and never send a byte: more than the relay can hold open.
const SILENT_SOCKETS: usize = 1100;

/// 1 100 silent sockets against a relay limited to 1 024 open files (docs/relay.md, "Connection limits"). The
/// caps are raised above the attack so that the file limit is what runs out: the relay backs off instead of
/// spinning on `EMFILE`, closes the silent sockets at the handshake timeout, and a publisher and a subscriber
/// that connect during the attack exchange messages.
#[tokio::test]
async fn silent_sockets_beyond_the_file_limit_do_not_shut_out_a_publisher_and_a_subscriber() {
    assert!(
        open_files_limit() > SILENT_SOCKETS as u64 + 100,
        "this test needs `ulimit -n` above {} for its own sockets",
        SILENT_SOCKETS + 100
    );
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("relay.log");
    let mut args = relay_args(&dir.path().join("relay"));
    let limits = ["--max-connections", "5000", "--max-connections-per-ip", "5000", "--handshake-timeout", "2s"];
    args.extend(limits.map(String::from));
    // The shell lowers its own limit and becomes the relay; this process keeps its higher one.
    let mut command = Command::new("sh");
    command
        .args(["-c", &format!("ulimit -n {RELAY_FILE_LIMIT} && exec \"$0\" \"$@\""), env!("CARGO_BIN_EXE_skytale")])
        .args(&args)
        .stderr(std::fs::File::create(&log_path).expect("create the relay's log file"));
    let running = spawn_printing(command, 1);

    let mut silent = Vec::with_capacity(SILENT_SOCKETS);
    let connecting = async {
        for _ in 0..SILENT_SOCKETS {
            silent.push(tokio::net::TcpStream::connect(running.relay()).await.expect("TCP connect to the relay"));
        }
    };
    tokio::time::timeout(Duration::from_secs(120), connecting).await.expect("every silent socket connected in time");
    let ch = channel("acme/team/under-attack");
    let mut group = new_group(false);
    let mut subscriber = Stream::open(running.relay()).await;
    subscriber.subscribe_ok(&ch, 1, From::Seq(1)).await;
    let mut publisher = Stream::open(running.relay()).await;
    for n in 1..=3 {
        let payload = group.application(format!("message {n}").as_bytes());
        assert_eq!(publisher.publish_ok(&ch, &format!("m{n}"), payload.clone()).await, n);
        let delivered = subscriber.deliveries(1).await;
        assert_eq!((seq(&delivered[0]), blob(&delivered[0])), (n, payload.as_slice()));
    }
    let all_closed = async {
        for socket in &mut silent {
            let mut byte = [0u8; 1];
            let read = tokio::io::AsyncReadExt::read(socket, &mut byte).await;
            assert!(matches!(read, Ok(0) | Err(_)), "the relay sent bytes to a silent socket");
        }
    };
    tokio::time::timeout(Duration::from_secs(120), all_closed).await.expect("every silent socket closed in time");

    running.signal("TERM");
    assert!(running.wait().await.0.success());
    let log = std::fs::read_to_string(&log_path).expect("read the relay's log");
    assert!(log.contains("accept failed, backing off"), "the relay never ran out of files:\n{log}");
}

/// This process's soft limit on open files, from `/proc/self/limits`.
fn open_files_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("read /proc/self/limits");
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|soft| if soft == "unlimited" { Some(u64::MAX) } else { soft.parse().ok() })
        .expect("a soft limit on open files")
}

#[test]
fn bad_arguments_are_refused_with_a_message() {
    let output =
        Command::new(env!("CARGO_BIN_EXE_skytale")).args(["relay", "--retention", "7w"]).output().expect("run skytale");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs a unit"), "{stderr}");
}

#[test]
fn relay_without_a_key_source_refuses_to_start_and_says_what_to_pass() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_skytale"))
        .args(["relay", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run skytale");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "announced a relay that should not run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for flag in ["--jwks-url", "--jwt-key-file", "--auth none"] {
        assert!(stderr.contains(flag), "{stderr}");
    }
}

#[test]
fn dev_prints_three_exports_serves_a_client_and_keeps_its_key_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().display().to_string();
    let args = ["dev", "--dir", &dir_arg, "--relay-port", "0", "--api-port", "0"];
    let first = skytale_printing(&args, 3);
    let relay = exported(&first.exports[0], "SKYTALE_RELAY").to_owned();
    let api_url = exported(&first.exports[1], "SKYTALE_API_URL").to_owned();
    let api_key = exported(&first.exports[2], "SKYTALE_API_KEY").to_owned();
    assert!(address_of(&relay).ip().is_loopback(), "{relay}");
    assert!(address_of(&api_url).ip().is_loopback(), "{api_url}");
    assert!(api_key.starts_with("sk_live_"), "{api_key}");
    assert!(dir.path().join("relay").join(skytale_relay::DB_FILE).exists());
    let key_file = dir.path().join("api-keys").join("myorg.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let alice_dir = tempfile::tempdir().unwrap();
    let alice = client(&relay, &api_url, &api_key, alice_dir.path(), "alice");
    let general = alice.create_channel("myorg/team/general").unwrap();
    general.send(b"hello").unwrap();
    // Auth is on: the dev account's org is `myorg`, so another org's channel is not its to create.
    let err = alice.create_channel("otherorg/team/general").err().unwrap();
    assert!(err.to_string().starts_with("auth error:"), "{err}");
    alice.close();
    first.signal("INT");
    let (status, rest) = first.wait_blocking();
    assert!(status.success(), "{status}");
    assert_eq!(rest, "", "exactly three lines on stdout");

    let second = skytale_printing(&args, 3);
    assert_eq!(exported(&second.exports[2], "SKYTALE_API_KEY"), api_key);
    let relay = exported(&second.exports[0], "SKYTALE_RELAY");
    let api_url = exported(&second.exports[1], "SKYTALE_API_URL");
    let alice = client(relay, api_url, &api_key, alice_dir.path(), "alice");
    let general = alice.open_channel("myorg/team/general").unwrap();
    general.send(b"after the restart").unwrap();
    let bob_dir = tempfile::tempdir().unwrap();
    let bob = client(relay, api_url, &api_key, bob_dir.path(), "bob");
    let bobs = add_member(&general, &bob);
    general.send(b"hi bob").unwrap();
    match bobs.recv(Some(std::time::Duration::from_secs(20))) {
        Ok(Recv::Message(message)) => assert_eq!(message.payload, b"hi bob"),
        other => panic!("expected bob to receive, got {other:?}"),
    }
    alice.close();
    bob.close();
    second.signal("TERM");
    assert!(second.wait_blocking().0.success());
}

/// Adds `joiner` to `channel` with a key package and a Welcome.
fn add_member(channel: &skytale_client::Channel, joiner: &Client) -> skytale_client::Channel {
    let key_package = joiner.generate_key_package().unwrap();
    let welcome = channel.add_member(&key_package).unwrap();
    joiner.join_channel(&channel.name(), &welcome).unwrap()
}

#[test]
fn keys_created_on_the_command_line_work_against_skytale_api_until_revoked() {
    let api_dir = tempfile::tempdir().unwrap();
    let api_dir_arg = api_dir.path().display().to_string();
    let api = skytale(&["api", "--listen", "127.0.0.1:0", "--data-dir", &api_dir_arg]);
    let api_url = exported(&api.exports[0], "SKYTALE_API_URL").to_owned();

    let keys = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_skytale"))
            .arg("keys")
            .args(args)
            .args(["--data-dir", &api_dir_arg])
            .output()
            .expect("run skytale keys")
    };
    let created = keys(&["create", "--org", "acme", "--name", "alice"]);
    assert!(created.status.success(), "{created:?}");
    let stdout = String::from_utf8(created.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let api_key = exported(lines[0], "SKYTALE_API_KEY");
    let key_id = lines[1]
        .strip_prefix("# ")
        .and_then(|comment| comment.split("skytale keys revoke ").nth(1))
        .unwrap_or_else(|| panic!("no key id in {:?}", lines[1]));
    assert!(key_id.starts_with("key_"), "{key_id}");

    let relay_dir = tempfile::tempdir().unwrap();
    let jwks_url = format!("{api_url}/.well-known/jwks.json");
    let relay_dir_arg = relay_dir.path().display().to_string();
    let relay = skytale(&["relay", "--listen", "127.0.0.1:0", "--data-dir", &relay_dir_arg, "--jwks-url", &jwks_url]);
    let relay_url = format!("http://{}", relay.relay());

    let alice_dir = tempfile::tempdir().unwrap();
    let alice = client(&relay_url, &api_url, api_key, alice_dir.path(), "alice");
    alice.create_channel("acme/team/cli").unwrap().send(b"hi").unwrap();
    alice.close();

    let revoked = keys(&["revoke", key_id]);
    assert!(revoked.status.success(), "{revoked:?}");
    let again = keys(&["revoke", key_id]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no live API key"), "{again:?}");

    let config = ClientConfig {
        endpoint: relay_url,
        data_dir: tempfile::tempdir().unwrap().path().to_path_buf(),
        identity: b"alice".to_vec(),
        api_key: Some(api_key.to_owned()),
        api_url: Some(api_url),
    };
    let err = Client::connect(config).err().expect("a revoked key is refused");
    assert!(err.to_string().starts_with("auth error:") && err.to_string().contains("revoked"), "{err}");

    relay.signal("TERM");
    assert!(relay.wait_blocking().0.success());
    api.signal("TERM");
    let (status, rest) = api.wait_blocking();
    assert!(status.success(), "{status}");
    assert_eq!(rest, "", "exactly one line on stdout");
}
