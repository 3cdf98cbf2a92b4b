//! The `skytale` binary as users run it: started as a process, its address read from the `export` line, talked
//! to over gRPC, stopped with signals.

// The relay's raw SLIM test client and real MLS messages.
#[path = "../../relay/tests/common/mod.rs"]
mod common;
#[path = "../../relay/tests/common/scrape.rs"]
mod scrape;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::mls_group::new_group;
use common::{blob, channel, meta, seq, From, Stream};
use skytale_auth::CLOCK_LEEWAY_SECS;
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
    if command.get_envs().all(|(name, _)| name != "RUST_LOG") {
        command.env("RUST_LOG", "warn");
    }
    let mut child = command.stdout(Stdio::piped()).spawn().expect("start skytale");
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

/// Starts `skytale args...` with `--admin-listen 127.0.0.1:0`, reads its first `lines` lines of stdout and, from
/// its log (the admin address is logged, never printed), its admin listener's address.
fn skytale_with_admin(args: &[&str], lines: usize) -> (Running, SocketAddr) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_skytale"));
    command.args(args).args(["--admin-listen", "127.0.0.1:0"]);
    command.env("RUST_LOG", "warn,skytale_admin=info").stderr(Stdio::piped());
    let mut running = spawn_printing(command, lines);
    let stderr = running.child.stderr.take().expect("piped stderr");
    (running, admin_address_from_log(stderr))
}

/// The address in the admin listener's "admin listening" log line. The log is read to its end on a thread of its
/// own, so the process never blocks on a full pipe.
fn admin_address_from_log(stderr: ChildStderr) -> SocketAddr {
    let (found, address) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let line = strip_ansi(&line);
            if let Some(rest) = line.split_once("admin listening").map(|(_, rest)| rest) {
                let addr = rest.split_once("local_addr=").map(|(_, addr)| addr.split_whitespace().next().unwrap_or(""));
                let _ = found.send(addr.and_then(|addr| addr.parse::<SocketAddr>().ok()));
            }
        }
    });
    address
        .recv_timeout(Duration::from_secs(30))
        .expect("an `admin listening` log line in time")
        .expect("a socket address in the `admin listening` log line")
}

/// `text` without terminal colour codes (`ESC [ ... m`), which the log has on or off depending on the terminal.
fn strip_ansi(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            plain.push(c);
        }
    }
    plain
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

/// `skytale api` on a free port in a temporary directory, its tokens living `token_lifetime`; and its URL.
fn api_issuing_tokens_for(token_lifetime: &str) -> (tempfile::TempDir, Running, String) {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().display().to_string();
    let args = ["api", "--listen", "127.0.0.1:0", "--data-dir", &dir_arg, "--token-lifetime", token_lifetime];
    let api = skytale(&args);
    let url = exported(&api.exports[0], "SKYTALE_API_URL").to_owned();
    (dir, api, url)
}

/// `skytale relay` on a free port verifying tokens with the key set of the API at `api_url`, with `args`, logging
/// at `rust_log` to a file in its temporary directory; and that file.
fn relay_verifying(api_url: &str, rust_log: &str, args: &[&str]) -> (tempfile::TempDir, PathBuf, Running) {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("relay.log");
    let jwks_url = format!("{api_url}/.well-known/jwks.json");
    let mut command = Command::new(env!("CARGO_BIN_EXE_skytale"));
    command
        .args(["relay", "--listen", "127.0.0.1:0", "--jwks-url", &jwks_url])
        .args(args)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("RUST_LOG", rust_log)
        .stderr(std::fs::File::create(&log_path).expect("create the relay's log file"));
    (dir, log_path, spawn_printing(command, 1))
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
    // The handshake timeout must outlast connecting every socket, even on a loaded machine: sockets closed before
    // the last ones connect would keep the relay under its file limit.
    let limits = ["--max-connections", "5000", "--max-connections-per-ip", "5000", "--handshake-timeout", "10s"];
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

/// The scenario within the default caps: 10 connections of 100 streams each (the default
/// `--max-streams-per-connection`), every stream subscribed to one channel and never reading.
const STALLED_CONNECTIONS: usize = 10;
const STALLED_STREAMS_PER_CONNECTION: usize = 100;
/// How much the relay's resident memory may grow while it fans one 1 MiB message out to the stalled
/// subscribers (docs/security.md, "Limits that hold"): the message is held once, whatever the number of
/// subscribers, so this leaves a wide margin over the ~1 MiB it costs; a copy per subscriber is ~1 GiB.
const STALLED_RSS_GROWTH_BOUND: u64 = 64 << 20;
/// How long the relay's memory is watched after the ack: the fan-out happens in this time.
const STALLED_WATCH: Duration = Duration::from_secs(5);

/// 1 000 subscribers that never read and one 1 MiB publish: the publisher is acked, the relay's memory stays
/// within [`STALLED_RSS_GROWTH_BOUND`], and every subscriber still gets the message once it reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_mib_publish_to_1000_stalled_subscribers_stays_within_the_memory_bound() {
    let dir = tempfile::tempdir().unwrap();
    let running = run(&relay_args(dir.path()));
    let pid = running.child.id();
    let ch = channel("acme/team/stalled");
    let mut stalled = Vec::with_capacity(STALLED_CONNECTIONS * STALLED_STREAMS_PER_CONNECTION);
    for _ in 0..STALLED_CONNECTIONS {
        let connection = common::connect(running.relay()).await;
        for _ in 0..STALLED_STREAMS_PER_CONNECTION {
            let mut stream = Stream::open_on(connection.clone(), None).await.expect("stream opens");
            stream.subscribe_ok(&ch, 1, From::Live).await;
            stalled.push(stream);
        }
    }
    let before = rss_bytes(pid);

    let mut group = new_group(false);
    let payload = group.application(&vec![7u8; (1 << 20) - 1024]);
    let mut publisher = Stream::open(running.relay()).await;
    assert_eq!(publisher.publish_ok(&ch, "big", payload.clone()).await, 1);
    let mut peak = before;
    for _ in 0..STALLED_WATCH.as_millis() / 50 {
        peak = peak.max(rss_bytes(pid));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "relay RSS with {} stalled subscribers: {} MiB before the publish, peak {} MiB after",
        stalled.len(),
        before >> 20,
        peak >> 20
    );
    assert!(
        peak.saturating_sub(before) <= STALLED_RSS_GROWTH_BOUND,
        "relay RSS grew from {} MiB to {} MiB",
        before >> 20,
        peak >> 20
    );

    // Nothing was dropped: every stalled subscriber gets the message once it reads (all at once, since streams
    // of one connection share its flow-control window and its in-flight budget).
    let readers: Vec<_> = stalled
        .into_iter()
        .map(|mut stream| tokio::spawn(async move { stream.deliveries(1).await.remove(0) }))
        .collect();
    for reader in readers {
        let delivery = reader.await.expect("reader task");
        assert_eq!((seq(&delivery), blob(&delivery)), (1, payload.as_slice()));
    }
    running.signal("TERM");
    assert!(running.wait().await.0.success());
}

/// Resident memory of process `pid`, from `/proc/PID/status`.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status");
    kib * 1024
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
fn account_quota_flags_of_zero_or_a_bytes_burst_below_the_payload_limit_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    let relay = |extra: &[&str]| {
        let args = [&["relay", "--auth", "none", "--listen", "127.0.0.1:0", "--data-dir", &data_dir][..], extra];
        Command::new(env!("CARGO_BIN_EXE_skytale")).args(args.concat()).output().expect("run skytale")
    };
    for flag in [
        "--max-streams-per-account",
        "--publishes-per-second",
        "--publish-burst",
        "--publish-bytes-per-second",
        "--publish-bytes-burst",
    ] {
        let output = relay(&[flag, "0"]);
        assert!(!output.status.success(), "{flag} 0 was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(flag) && stderr.contains("must be at least 1"), "{stderr}");
    }
    let output = relay(&["--max-payload", "4096", "--publish-bytes-burst", "4095"]);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "announced a relay that should not run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--publish-bytes-burst")
            && stderr.contains("of 4095 bytes is below the largest message the relay accepts (--max-payload, 4096")
            && stderr.contains("make the burst at least 4096"),
        "{stderr}"
    );
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
    // A second stack on the same directory is refused at once, naming the process that runs the first.
    let refused = Command::new(env!("CARGO_BIN_EXE_skytale")).args(args).output().expect("run skytale");
    assert!(!refused.status.success());
    assert!(refused.stdout.is_empty(), "a refused stack announced itself");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let in_use = format!("{} is in use by process {}", dir.path().display(), first.child.id());
    assert!(stderr.contains(&in_use) && stderr.contains("pass another --dir"), "{stderr}");

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

#[test]
fn tls_flags_come_in_pairs_and_files_that_do_not_load_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let ca = skytale_tls_server::LocalCa::load_or_create(dir.path()).unwrap();
    let (cert, key) = (ca.server.cert.display().to_string(), ca.server.key.display().to_string());
    let data_dir = dir.path().join("data").display().to_string();
    let skytale = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_skytale")).args(args).output().expect("run skytale");
    let relay = ["relay", "--auth", "none", "--listen", "127.0.0.1:0", "--data-dir", &data_dir];
    let api = ["api", "--listen", "127.0.0.1:0", "--data-dir", &data_dir];

    for (args, missing) in [
        ([&relay[..], &["--tls-cert", &cert]].concat(), "--tls-key"),
        ([&api[..], &["--tls-key", &key]].concat(), "--tls-cert"),
    ] {
        let output = skytale(&args);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("required arguments were not provided") && stderr.contains(missing), "{stderr}");
    }
    let absent = dir.path().join("absent.pem").display().to_string();
    for (args, named) in [
        ([&relay[..], &["--tls-cert", &absent, "--tls-key", &key]].concat(), &absent),
        // The key file given as the certificate.
        ([&api[..], &["--tls-cert", &key, "--tls-key", &key]].concat(), &key),
    ] {
        let output = skytale(&args);
        assert!(!output.status.success());
        assert!(output.stdout.is_empty(), "announced a server that should not run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&format!("TLS certificate file {named}")), "{stderr}");
    }
}

/// An HTTPS client trusting only the CA in `ca_file`.
fn https_client(ca_file: &Path) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca_file).unwrap()).unwrap();
    reqwest::Client::builder().tls_built_in_root_certs(false).add_root_certificate(ca).build().unwrap()
}

/// `POST /v1/tokens` over `http`: the access token for `api_key`.
async fn token_over(http: &reqwest::Client, api_url: &str, api_key: &str) -> String {
    let response = http.post(format!("{api_url}/v1/tokens")).bearer_auth(api_key).send().await.expect("answered");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("a JSON body");
    body["token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn dev_tls_prints_four_exports_serves_both_over_https_and_keeps_its_ca_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().display().to_string();
    let args = ["dev", "--dir", &dir_arg, "--relay-port", "0", "--api-port", "0", "--tls"];
    let first = skytale_printing(&args, 4);
    let relay = exported(&first.exports[0], "SKYTALE_RELAY").to_owned();
    let api_url = exported(&first.exports[1], "SKYTALE_API_URL").to_owned();
    let api_key = exported(&first.exports[2], "SKYTALE_API_KEY").to_owned();
    let ca_file = std::path::PathBuf::from(exported(&first.exports[3], "SKYTALE_CA_FILE"));
    assert!(relay.starts_with("https://127.0.0.1:") && api_url.starts_with("https://127.0.0.1:"), "{relay} {api_url}");
    assert_eq!(ca_file, dir.path().join("ca.pem"));
    let ca_pem = std::fs::read(&ca_file).unwrap();

    // The API and the relay, trusting the printed CA: a token, then an authenticated stream with it.
    let token = token_over(&https_client(&ca_file), &api_url, &api_key).await;
    let tls = tonic::transport::ClientTlsConfig::new().ca_certificate(tonic::transport::Certificate::from_pem(&ca_pem));
    let endpoint = tonic::transport::Endpoint::from_shared(relay.clone()).unwrap().tls_config(tls).unwrap();
    let connection = endpoint.connect().await.expect("TLS to the relay, trusting the printed CA");
    Stream::open_on(connection, Some(&token)).await.expect("a stream with the dev key's token");
    // Without it, the certificate is not trusted, and the error says so.
    let refused = reqwest::Client::new().get(format!("{api_url}/.well-known/jwks.json")).send().await.unwrap_err();
    let mut causes = refused.to_string();
    let mut cause = std::error::Error::source(&refused);
    while let Some(error) = cause {
        causes.push_str(&format!(": {error}"));
        cause = error.source();
    }
    assert!(causes.contains("UnknownIssuer"), "{causes}");

    first.signal("INT");
    let (status, rest) = first.wait().await;
    assert!(status.success(), "{status}");
    assert_eq!(rest, "", "exactly four lines on stdout");

    // A restart reuses the CA: clients that trust it go on trusting the stack.
    let second = skytale_printing(&args, 4);
    assert_eq!(exported(&second.exports[2], "SKYTALE_API_KEY"), api_key);
    assert_eq!(std::path::PathBuf::from(exported(&second.exports[3], "SKYTALE_CA_FILE")), ca_file);
    assert_eq!(std::fs::read(&ca_file).unwrap(), ca_pem);
    let api_url = exported(&second.exports[1], "SKYTALE_API_URL");
    token_over(&https_client(&ca_file), api_url, &api_key).await;
    second.signal("TERM");
    assert!(second.wait().await.0.success());

    // A damaged certificate is named, with how to start over.
    let server_cert = dir.path().join(skytale_tls_server::SERVER_CERT_FILE);
    std::fs::write(&server_cert, "damaged").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_skytale")).args(args).output().expect("run skytale");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "announced a stack that should not run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&server_cert.display().to_string()) && stderr.contains("delete"), "{stderr}");
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

    let (api_key, key_id) = create_key(&api_dir_arg, "alice");
    let api_key = api_key.as_str();

    let relay_dir = tempfile::tempdir().unwrap();
    let jwks_url = format!("{api_url}/.well-known/jwks.json");
    let relay_dir_arg = relay_dir.path().display().to_string();
    let relay = skytale(&["relay", "--listen", "127.0.0.1:0", "--data-dir", &relay_dir_arg, "--jwks-url", &jwks_url]);
    let relay_url = format!("http://{}", relay.relay());

    let alice_dir = tempfile::tempdir().unwrap();
    let alice = client(&relay_url, &api_url, api_key, alice_dir.path(), "alice");
    alice.create_channel("acme/team/cli").unwrap().send(b"hi").unwrap();
    alice.close();

    let revoked = keys_command(&api_dir_arg, &["revoke", &key_id]);
    assert!(revoked.status.success(), "{revoked:?}");
    let again = keys_command(&api_dir_arg, &["revoke", &key_id]);
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

/// `skytale keys ARGS --data-dir DIR`.
fn keys_command(api_dir: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_skytale"))
        .arg("keys")
        .args(args)
        .args(["--data-dir", api_dir])
        .output()
        .expect("run skytale keys")
}

/// Creates an account of org acme with `skytale keys create`; returns its API key and key id.
fn create_key(api_dir: &str, name: &str) -> (String, String) {
    let created = keys_command(api_dir, &["create", "--org", "acme", "--name", name]);
    assert!(created.status.success(), "{created:?}");
    let stdout = String::from_utf8(created.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let key_id = lines[1]
        .strip_prefix("# ")
        .and_then(|comment| comment.split("skytale keys revoke ").nth(1))
        .unwrap_or_else(|| panic!("no key id in {:?}", lines[1]));
    assert!(key_id.starts_with("key_"), "{key_id}");
    (exported(lines[0], "SKYTALE_API_KEY").to_owned(), key_id.to_owned())
}

/// `POST /v1/tokens` with `api_key`: the token and its expiry (unix seconds), or the HTTP status of a refusal.
async fn fetch_token(api_url: &str, api_key: &str) -> Result<(String, u64), reqwest::StatusCode> {
    let response = reqwest::Client::new()
        .post(format!("{api_url}/v1/tokens"))
        .bearer_auth(api_key)
        .send()
        .await
        .expect("the API answers");
    if !response.status().is_success() {
        return Err(response.status());
    }
    let body: serde_json::Value = response.json().await.expect("a JSON body");
    Ok((body["token"].as_str().expect("token").to_owned(), body["expires_at"].as_u64().expect("expires_at")))
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The revocation test's token lifetime and relay grace period: short, so the test sees a revoked key's stream
/// end in under a minute (the relay's clock leeway, 30 s, comes on top).
const SHORT_TOKEN_LIFETIME: &str = "4s";
const SHORT_GRACE: u64 = 2;

/// A stream opened with a key that is then revoked ends once its last token expired, with the relay's clock
/// leeway and grace period (docs/security.md, "Who can do what"), saying why; meanwhile clients whose tokens
/// live just as short but who refresh them in-band exchange messages throughout and never see their stream end.
#[test]
fn a_revoked_keys_stream_ends_within_its_tokens_life_leeway_and_grace_while_refreshing_clients_carry_on() {
    let (api_dir, api, api_url) = api_issuing_tokens_for(SHORT_TOKEN_LIFETIME);
    let api_dir_arg = api_dir.path().display().to_string();
    let (alice_key, _) = create_key(&api_dir_arg, "alice");
    let (mallory_key, mallory_key_id) = create_key(&api_dir_arg, "mallory");
    // The relay's info lines say which streams it ended and why.
    let grace = format!("{SHORT_GRACE}s");
    let (_relay_dir, log_path, relay) = relay_verifying(&api_url, "skytale_relay=info", &["--token-grace", &grace]);
    let relay_url = format!("http://{}", relay.relay());

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (token, expires_at) = runtime.block_on(fetch_token(&api_url, &mallory_key)).expect("a token for mallory");
    let mut mallory = runtime.block_on(Stream::open_with(relay.relay(), Some(&token))).expect("stream opens");
    let revoked = keys_command(&api_dir_arg, &["revoke", &mallory_key_id]);
    assert!(revoked.status.success(), "{revoked:?}");
    let refused = runtime.block_on(fetch_token(&api_url, &mallory_key));
    assert_eq!(refused.err(), Some(reqwest::StatusCode::UNAUTHORIZED));
    // Mallory's stream stays usable until its token expires, then ends.
    let watching = runtime.spawn(async move {
        mallory.send(common::link_negotiation("mallory")).await;
        assert!(meta(&mallory.recv().await, keys::MAX_PAYLOAD).is_some());
        let frame = mallory.recv().await;
        let ended = mallory.try_recv().await;
        (common::error_code(&frame).to_owned(), meta(&frame, keys::ERROR).map(str::to_owned), ended.err(), now_secs())
    });

    let alice_dir = tempfile::tempdir().unwrap();
    let alice = client(&relay_url, &api_url, &alice_key, alice_dir.path(), "alice");
    let bob_dir = tempfile::tempdir().unwrap();
    let bob = client(&relay_url, &api_url, &alice_key, bob_dir.path(), "bob");
    let channel = alice.create_channel("acme/team/revocation").unwrap();
    let bobs = add_member(&channel, &bob);
    let documented_end = expires_at + CLOCK_LEEWAY_SECS + SHORT_GRACE;
    // Past the end of alice's and bob's first tokens too, leeway and grace included: only refreshes keep them.
    let mut n = 0;
    while now_secs() <= documented_end + 10 {
        n += 1;
        let text = format!("message {n}");
        channel.send(text.as_bytes()).unwrap();
        match bobs.recv(Some(Duration::from_secs(20))) {
            Ok(Recv::Message(message)) => assert_eq!(message.payload, text.as_bytes()),
            other => panic!("expected bob to receive {text:?}, got {other:?}"),
        }
        std::thread::sleep(Duration::from_secs(1));
    }

    let (code, message, status, ended_at) = runtime.block_on(watching).expect("mallory's stream watched");
    assert_eq!(code, "unauthorized");
    assert!(message.as_deref().is_some_and(|m| m.contains("not refreshed")), "{message:?}");
    assert_eq!(status.map(|s| s.code()), Some(tonic::Code::Unauthenticated));
    assert!(ended_at > expires_at + CLOCK_LEEWAY_SECS, "ended at {ended_at}, while its token was valid");
    assert!(ended_at <= documented_end + 2, "ended at {ended_at}, documented by {documented_end}");
    alice.close();
    bob.close();

    relay.signal("TERM");
    assert!(relay.wait_blocking().0.success());
    let log = std::fs::read_to_string(&log_path).expect("read the relay's log");
    let ended: Vec<&str> = log.lines().filter(|line| line.contains("stream closed: its token expired")).collect();
    assert_eq!(ended.len(), 1, "only mallory's stream ends for its token:\n{log}");
    api.signal("TERM");
    assert!(api.wait_blocking().0.success());
}

/// Frames refused for breaking the protocol in the log-volume test: ten times what is logged.
const REFUSED_FRAMES: usize = 100;

/// A client sending nothing but bad frames gets every one refused, and the relay logs only the first ten at warn,
/// then how many more it refused (docs/protocol.md, "Frames the relay cannot use").
#[tokio::test]
async fn refused_frames_are_logged_at_warn_at_most_ten_a_minute_per_stream_then_counted() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("relay.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_skytale"));
    command.args(relay_args(&dir.path().join("relay"))).stderr(std::fs::File::create(&log_path).unwrap());
    let running = spawn_printing(command, 1);

    let mut stream = Stream::open(running.relay()).await;
    for _ in 0..REFUSED_FRAMES {
        stream.send_raw(vec![0xff; 8]).await;
    }
    for _ in 0..REFUSED_FRAMES {
        assert_eq!(common::error_code(&stream.recv().await), "bad_request");
    }
    running.signal("TERM");
    assert!(running.wait().await.0.success());
    drop(stream);

    let log = std::fs::read_to_string(&log_path).expect("read the relay's log");
    let logged = log.lines().filter(|line| line.contains("frame refused")).count();
    assert_eq!(logged, 10, "{log}");
    let summary = format!("{} more frames refused and not logged", REFUSED_FRAMES - 10);
    assert_eq!(log.lines().filter(|line| line.contains(&summary)).count(), 1, "{log}");
}

#[test]
fn keys_create_without_a_database_refuses_to_make_one_nobody_reads() {
    let home = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_skytale"))
        .args(["keys", "create", "--org", "acme"])
        .env("HOME", home.path())
        .output()
        .expect("run skytale");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "printed a key no server knows");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let missing = home.path().join(".skytale").join("api").join("api.db");
    assert!(stderr.contains(&format!("no API database at {}", missing.display())), "{stderr}");
    assert!(stderr.contains("--data-dir") && stderr.contains("D/api"), "{stderr}");
    assert!(!missing.exists());
}

#[test]
fn dev_on_a_taken_port_says_to_pass_port_0() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_skytale"))
        .args(["dev", "--dir"])
        .arg(dir.path())
        .args(["--relay-port", "0", "--api-port", &port])
        .output()
        .expect("run skytale");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("the port is taken") && stderr.contains("pass --api-port 0"), "{stderr}");
    // Written to a pipe, the log has no colour codes.
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}

#[tokio::test]
async fn relay_and_api_serve_health_and_metrics_on_their_admin_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let relay_args = relay_args(&dir.path().join("relay"));
    let (relay, relay_admin) = skytale_with_admin(&relay_args.iter().map(String::as_str).collect::<Vec<_>>(), 1);
    let api_dir = dir.path().join("api").display().to_string();
    let (api, api_admin) = skytale_with_admin(&["api", "--listen", "127.0.0.1:0", "--data-dir", &api_dir], 1);
    exported(&api.exports[0], "SKYTALE_API_URL");

    for (admin, series) in [(relay_admin, "skytale_relay_streams_open"), (api_admin, "skytale_api_long_polls_waiting")]
    {
        assert!(admin.ip().is_loopback(), "{admin}");
        assert_eq!(scrape::get(admin, "/healthz").await.0, reqwest::StatusCode::OK);
        let (status, body) = scrape::get(admin, "/readyz").await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        assert_eq!(scrape::Scrape::take(admin).await.series_named(series).len(), 1, "{series}");
    }
    for running in [relay, api] {
        running.signal("TERM");
        let (status, rest) = running.wait().await;
        assert!(status.success(), "{status}");
        assert_eq!(rest, "", "one line on stdout");
    }
}

#[tokio::test]
async fn dev_serves_the_relay_and_the_api_on_one_admin_listener_and_still_prints_three_lines() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().display().to_string();
    let (dev, admin) = skytale_with_admin(&["dev", "--dir", &dir_arg, "--relay-port", "0", "--api-port", "0"], 3);
    exported(&dev.exports[2], "SKYTALE_API_KEY");
    assert_eq!(scrape::get(admin, "/healthz").await.0, reqwest::StatusCode::OK);
    let (status, body) = scrape::get(admin, "/readyz").await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let scrape = scrape::Scrape::take(admin).await;
    assert_eq!(scrape.value("skytale_relay_streams_open", &[]), 0.0);
    assert_eq!(scrape.series_named("skytale_relay_streams_open").len(), 1);
    assert_eq!(scrape.series_named("skytale_api_long_polls_waiting").len(), 1);

    dev.signal("INT");
    let (status, rest) = dev.wait().await;
    assert!(status.success(), "{status}");
    assert_eq!(rest, "", "exactly three lines on stdout");
}

/// The `kid` in a token's header.
fn kid_of(token: &str) -> String {
    let header = token.split('.').next().expect("a JWT");
    let json = base64_url_decode(header);
    let header: serde_json::Value = serde_json::from_slice(&json).expect("a JSON header");
    header["kid"].as_str().expect("a kid").to_owned()
}

fn base64_url_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).expect("base64url")
}

/// The key ids the API at `api_url` publishes, oldest first.
async fn published_kids(api_url: &str) -> Vec<String> {
    let jwks: serde_json::Value = reqwest::get(format!("{api_url}/.well-known/jwks.json"))
        .await
        .expect("the API answers")
        .json()
        .await
        .expect("a JSON key set");
    jwks["keys"].as_array().expect("keys").iter().map(|key| key["kid"].as_str().expect("kid").to_owned()).collect()
}

/// Polls `check` every 100 ms, at most 300 times (30 s), until it holds; fails naming `what` otherwise.
fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..300 {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("waited 30 s for {what}");
}

/// `skytale keys ARGS --data-dir DIR` for the signing-key subcommands; stdout on success, stderr on failure.
fn signing_keys_command(api_dir: &str, args: &[&str]) -> Result<String, String> {
    let output = keys_command(api_dir, args);
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("UTF-8 output");
    if output.status.success() {
        Ok(text(output.stdout))
    } else {
        assert!(output.stdout.is_empty(), "{output:?}");
        Err(text(output.stderr))
    }
}

/// Lines of the log file at `path` that contain every one of `parts`.
fn log_lines(path: &Path, parts: &[&str]) -> usize {
    let log = std::fs::read_to_string(path).expect("read the log");
    log.lines().map(strip_ansi).filter(|line| parts.iter().all(|part| line.contains(part))).count()
}

/// The token lifetime of the rotation test: short, so the clients refresh in-band (at two thirds of it) several
/// times while the test runs.
const ROTATION_TOKEN_LIFETIME: &str = "6s";

/// The test (issue 10, item 3): the API's signing key is rotated and the old one retired while clients are
/// connected and exchanging messages, with no restart. No client sees an error or a disconnection, and every
/// in-band refresh is accepted; a token from before the rotation still verifies at the relay, one from after it
/// verifies at once (the relay fetches the JWKS again on its unknown key id, its periodic fetch being minutes
/// away); once the old key is retired and the relay has fetched again, the old token is refused as an unknown key.
#[test]
fn a_signing_key_rotation_with_connected_clients_needs_no_restart_and_costs_no_client_an_error() {
    let (api_dir, api, api_url) = api_issuing_tokens_for(ROTATION_TOKEN_LIFETIME);
    let api_dir_arg = api_dir.path().display().to_string();
    let (api_key, _) = create_key(&api_dir_arg, "alice");
    // Debug lines say when a stream's token was refreshed.
    let (_relay_dir, log_path, relay) =
        relay_verifying(&api_url, "skytale_relay=debug", &["--admin-listen", "127.0.0.1:0"]);
    let relay_url = format!("http://{}", relay.relay());
    let runtime = tokio::runtime::Runtime::new().unwrap();

    // Alice sends to Bob without pause until told to stop; any error ends the exchange and is reported.
    let alice_dir = tempfile::tempdir().unwrap();
    let alice = client(&relay_url, &api_url, &api_key, alice_dir.path(), "alice");
    let bob_dir = tempfile::tempdir().unwrap();
    let bob = client(&relay_url, &api_url, &api_key, bob_dir.path(), "bob");
    let disconnections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for member in [&alice, &bob] {
        let disconnections = std::sync::Arc::clone(&disconnections);
        let on_change = move |connected: bool| {
            if !connected {
                disconnections.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        };
        member.on_connection_change(Some(Box::new(on_change))).unwrap();
    }
    let channel = alice.create_channel("acme/team/rotation").unwrap();
    let bobs = add_member(&channel, &bob);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let exchange = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || -> Result<u64, String> {
            let mut sent = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                sent += 1;
                let text = format!("message {sent}");
                channel.send(text.as_bytes()).map_err(|error| format!("send of {text:?}: {error}"))?;
                match bobs.recv(Some(Duration::from_secs(20))) {
                    Ok(Recv::Message(message)) if message.payload == text.as_bytes() => {}
                    other => return Err(format!("bob, expecting {text:?}, got {other:?}")),
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(sent)
        })
    };

    let (old_token, _) = runtime.block_on(fetch_token(&api_url, &api_key)).expect("a token");
    let old_kid = kid_of(&old_token);
    assert_eq!(runtime.block_on(published_kids(&api_url)), [old_kid.as_str()]);

    let rotated = signing_keys_command(&api_dir_arg, &["rotate-signing-key"]).expect("the rotation succeeds");
    let new_kid = rotated.lines().next().expect("the new kid on the first line").to_owned();
    assert!(rotated.contains(&format!("skytale keys retire-signing-key {old_kid}")), "{rotated}");
    assert!(rotated.contains("--token-lifetime"), "{rotated}");
    api.signal("HUP");
    until("the API to publish both keys", || {
        runtime.block_on(published_kids(&api_url)) == [old_kid.clone(), new_kid.clone()]
    });
    let refreshes_at_rotation = log_lines(&log_path, &["token refreshed"]);

    let (new_token, _) = runtime.block_on(fetch_token(&api_url, &api_key)).expect("a token");
    assert_eq!(kid_of(&new_token), new_kid, "the API signs with the newest key");
    for token in [&new_token, &old_token] {
        runtime.block_on(Stream::open_with(relay.relay(), Some(token))).expect("the relay opens a stream");
    }
    // Both clients refresh in-band twice or more with tokens of the new key, and the relay takes them.
    until("the clients to refresh their tokens with the new key", || {
        log_lines(&log_path, &["token refreshed"]) >= refreshes_at_rotation + 4
    });

    let refused = signing_keys_command(&api_dir_arg, &["retire-signing-key", &new_kid]).expect_err("newest kept");
    assert!(refused.contains(&new_kid) && refused.contains("newest"), "{refused}");
    let refused = signing_keys_command(&api_dir_arg, &["retire-signing-key", "no-such-kid"]).expect_err("unknown");
    assert!(refused.contains("no-such-kid") && refused.contains(&format!("{old_kid}, {new_kid}")), "{refused}");
    signing_keys_command(&api_dir_arg, &["retire-signing-key", &old_kid]).expect("the old key is retired");
    api.signal("HUP");
    until("the API to publish the new key only", || runtime.block_on(published_kids(&api_url)) == [new_kid.as_str()]);
    relay.signal("HUP");
    until("the relay to refuse the retired key's token", || {
        match runtime.block_on(Stream::open_with(relay.relay(), Some(&old_token))) {
            Ok(_) => false,
            Err(status) => {
                assert!(status.message().starts_with("token signed by unknown key"), "{status:?}");
                true
            }
        }
    });
    runtime.block_on(Stream::open_with(relay.relay(), Some(&new_token))).expect("the new key's token opens a stream");
    let refreshes_at_retirement = log_lines(&log_path, &["token refreshed"]);
    until("the clients to refresh again after the retirement", || {
        log_lines(&log_path, &["token refreshed"]) >= refreshes_at_retirement + 2
    });

    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let sent = exchange.join().expect("the exchange thread").expect("no client error");
    assert!(sent > 0);
    assert_eq!(disconnections.load(std::sync::atomic::Ordering::SeqCst), 0, "a client was disconnected");
    // The retired key's token is the only refusal; no stream or refresh was refused otherwise.
    assert_eq!(log_lines(&log_path, &["token refresh refused"]), 0);
    assert_eq!(log_lines(&log_path, &["stream refused"]), 1);
    assert_eq!(log_lines(&log_path, &["trusted keys changed"]), 2, "fetched at the new kid and on SIGHUP");
    alice.close();
    bob.close();
    for running in [relay, api] {
        running.signal("TERM");
        assert!(running.wait_blocking().0.success());
    }
}

/// `skytale api` reads its signing keys again when the file changes (polled every 2 s) and on SIGHUP, even when
/// the file did not change; a file it cannot use keeps the keys it has, with an error naming the file.
#[test]
fn skytale_api_reads_its_signing_keys_when_the_file_changes_and_on_sighup_and_keeps_them_when_the_file_is_bad() {
    let api_dir = tempfile::tempdir().unwrap();
    let api_dir_arg = api_dir.path().display().to_string();
    let key_file = api_dir.path().join("api-signing-key.pem");
    let log_path = api_dir.path().join("api.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_skytale"));
    command
        .args(["api", "--listen", "127.0.0.1:0", "--data-dir", &api_dir_arg])
        .env("RUST_LOG", "skytale_api=info")
        .stderr(std::fs::File::create(&log_path).expect("create the API's log file"));
    let api = spawn_printing(command, 1);
    let api_url = exported(&api.exports[0], "SKYTALE_API_URL").to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let first = runtime.block_on(published_kids(&api_url));
    assert_eq!(first.len(), 1);

    // A change of the file: the API publishes both keys without being told.
    let rotated = signing_keys_command(&api_dir_arg, &["rotate-signing-key"]).unwrap();
    let second = rotated.lines().next().unwrap().to_owned();
    until("the API to publish the rotated ring", || {
        runtime.block_on(published_kids(&api_url)) == [first[0].clone(), second.clone()]
    });
    let both = format!("{} {second}", first[0]);
    until("the API to log the ring it read", || log_lines(&log_path, &["signing keys read", &both]) == 1);

    // SIGHUP reads the file again though it did not change.
    api.signal("HUP");
    until("the API to read its keys on SIGHUP", || log_lines(&log_path, &["signing keys read", &both]) == 2);

    // A file readable by others: reported once by the poll, again on SIGHUP, and the keys stay.
    let file = key_file.display().to_string();
    let refused = ["cannot reload the signing keys, keeping the current ones", &file, "accessible by other users"];
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    until("the poll to report the bad file", || log_lines(&log_path, &refused) == 1);
    api.signal("HUP");
    until("SIGHUP to report the bad file", || log_lines(&log_path, &refused) == 2);
    assert_eq!(runtime.block_on(published_kids(&api_url)), [first[0].clone(), second.clone()]);
    let (api_key, _) = create_key(&api_dir_arg, "alice");
    let (token, _) = runtime.block_on(fetch_token(&api_url, &api_key)).expect("tokens are still issued");
    assert_eq!(kid_of(&token), second);

    // Rotating refuses a file others can read, and a file that is not there.
    let refused = signing_keys_command(&api_dir_arg, &["rotate-signing-key"]).unwrap_err();
    assert!(refused.contains(&file) && refused.contains("accessible by other users"), "{refused}");
    let missing = api_dir.path().join("missing.pem").display().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_skytale"))
        .args(["keys", "rotate-signing-key", "--key-file", &missing])
        .output()
        .expect("run skytale keys");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains(&format!("no signing-key file at {missing}")), "{stderr}");

    api.signal("TERM");
    assert!(api.wait_blocking().0.success());
}

/// `skytale dev` outlives SIGHUP, on which the API reads its signing keys again and the relay the keys it trusts.
#[test]
fn skytale_dev_reads_its_keys_again_on_sighup_and_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().join("dev").display().to_string();
    let log_path = dir.path().join("dev.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_skytale"));
    command
        .args(["dev", "--dir", &dir_arg, "--relay-port", "0", "--api-port", "0"])
        .env("RUST_LOG", "skytale_api=info,skytale=info")
        .stderr(std::fs::File::create(&log_path).expect("create the log file"));
    let dev = spawn_printing(command, 3);
    let api_url = exported(&dev.exports[1], "SKYTALE_API_URL").to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let kids = runtime.block_on(published_kids(&api_url));
    let read_by_api = ["signing keys read", &kids[0]];
    let read_by_relay = ["trusted keys read again", &kids[0]];
    let before = log_lines(&log_path, &read_by_api);

    dev.signal("HUP");
    until("the API to read its keys on SIGHUP", || log_lines(&log_path, &read_by_api) == before + 1);
    until("the relay to read its keys on SIGHUP", || log_lines(&log_path, &read_by_relay) == 1);
    assert_eq!(runtime.block_on(published_kids(&api_url)), kids, "still serving");

    dev.signal("TERM");
    assert!(dev.wait_blocking().0.success());
}

/// The variables the SDK and the quickstart read, exported the way a developer's shell has them: none may change
/// a server.
const SDK_VARIABLES: [(&str, &str); 6] = [
    ("SKYTALE_RELAY", "http://127.0.0.1:1"),
    ("SKYTALE_API_URL", "http://127.0.0.1:1"),
    ("SKYTALE_API_KEY", "sk_live_not_a_server_setting"),
    ("SKYTALE_CA_FILE", "/nonexistent/ca.pem"),
    ("SKYTALE_DATA_DIR", "/nonexistent/data"),
    ("SKYTALE_LOG", "loud"),
];

/// `skytale relay` with the SDK's variables set and its own data-dir variable unset, unless a test sets it.
fn relay_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_skytale"));
    command.arg("relay").envs(SDK_VARIABLES).env_remove("SKYTALE_RELAY_DATA_DIR").env_remove("SKYTALE_RELAY_CONFIG");
    command
}

/// Runs `command` (a relay) until it announces itself, stops it, and says which of `dirs` holds its message log.
fn data_dir_used(command: Command, dirs: &[&Path]) -> Vec<bool> {
    let running = spawn_printing(command, 1);
    running.signal("TERM");
    assert!(running.wait_blocking().0.success());
    dirs.iter().map(|dir| dir.join(skytale_relay::DB_FILE).exists()).collect()
}

#[test]
fn a_flag_comes_from_the_command_line_else_its_environment_variable_else_the_config_file() {
    let root = tempfile::tempdir().unwrap();
    let [from_file, from_env, from_command_line] = ["file", "env", "cli"].map(|name| root.path().join(name));
    let config = root.path().join("skytale.toml");
    let table = format!("[relay]\nlisten = \"127.0.0.1:0\"\nauth = \"none\"\ndata-dir = {:?}\n", from_file.display());
    std::fs::write(&config, table).unwrap();
    let dirs = [from_file.as_path(), from_env.as_path(), from_command_line.as_path()];

    let mut command = relay_command();
    command.arg("--config").arg(&config);
    assert_eq!(data_dir_used(command, &dirs), [true, false, false]);
    std::fs::remove_dir_all(&from_file).unwrap();

    // The config file named by its own variable; the data directory's variable beats the file.
    let mut command = relay_command();
    command.env("SKYTALE_RELAY_CONFIG", &config).env("SKYTALE_RELAY_DATA_DIR", &from_env);
    assert_eq!(data_dir_used(command, &dirs), [false, true, false]);
    std::fs::remove_dir_all(&from_env).unwrap();

    let mut command = relay_command();
    command.env("SKYTALE_RELAY_CONFIG", &config).env("SKYTALE_RELAY_DATA_DIR", &from_env);
    command.arg("--data-dir").arg(&from_command_line);
    assert_eq!(data_dir_used(command, &dirs), [false, false, true]);
}

#[test]
fn the_sdk_variables_of_a_developer_shell_do_not_change_the_api_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_skytale"));
    command.args(["api", "--listen", "127.0.0.1:0", "--data-dir"]).arg(dir.path()).envs(SDK_VARIABLES);
    let running = spawn_printing(command, 1);
    exported(&running.exports[0], "SKYTALE_API_URL");
    assert!(dir.path().join("api.db").exists(), "the API used another data directory");
    running.signal("TERM");
    assert!(running.wait_blocking().0.success());
}

/// `skytale relay` with `config` as its config file, `extra` after; its exit status and stderr. It never gets to
/// start: each config is refused.
fn refused_config(config: &str, extra: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("skytale.toml");
    std::fs::write(&path, config).unwrap();
    let output = relay_command().arg("--config").arg(&path).envs(extra.iter().copied()).output().expect("run skytale");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(output.stdout.is_empty(), "announced a relay that should not run");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(stderr.contains(&path.display().to_string()), "the file is not named: {stderr}");
    stderr
}

#[test]
fn config_file_mistakes_name_the_file_the_table_the_key_and_what_is_accepted() {
    let stderr = refused_config("[relay]\nmax_payload = 5\n", &[]);
    assert!(stderr.contains("[relay] has no setting `max_payload`") && stderr.contains("max-payload,"), "{stderr}");
    // clap's own message, as on the command line.
    let stderr = refused_config("[relay]\nmax-payload = \"big\"\n", &[]);
    assert!(stderr.contains("[relay] max-payload: invalid value 'big' for '--max-payload"), "{stderr}");
    let stderr = refused_config("[relay]\nsync = \"fast\"\n", &[]);
    assert!(stderr.contains("[relay] sync: invalid value 'fast'") && stderr.contains("normal, full"), "{stderr}");
    let stderr = refused_config("[relay]\nmax-payload = 1.5\n", &[]);
    assert!(stderr.contains("[relay] max-payload is a decimal number, but it takes a string or a whole"), "{stderr}");
    let stderr = refused_config("[dev]\ntls = \"yes\"\n", &[]);
    assert!(stderr.contains("[dev] tls is a string, but it takes true or false"), "{stderr}");
    let stderr = refused_config("[relays]\n", &[]);
    assert!(stderr.contains("unknown table [relays]: the tables are [relay], [api], [dev]"), "{stderr}");
    let stderr = refused_config("max-payload = 1\n", &[]);
    assert!(stderr.contains("`max-payload` is outside a table"), "{stderr}");
    let stderr = refused_config("[relay\n", &[]);
    assert!(stderr.contains("is not valid TOML") && stderr.contains("line 1"), "{stderr}");
    // Every table is checked, whichever command reads the file.
    let stderr = refused_config("[api]\ntoken-lifetime = \"0s\"\n", &[]);
    assert!(stderr.contains("[api] token-lifetime: invalid value '0s'"), "{stderr}");
    // How the file's flags combine with the rest is clap's to judge, with a note on where they came from.
    let stderr = refused_config("[relay]\ntls-cert = \"cert.pem\"\n", &[]);
    assert!(stderr.contains("--tls-key") && stderr.contains("note: [relay] of "), "{stderr}");
    assert!(stderr.contains("sets tls-cert"), "{stderr}");
    let stderr = refused_config("[relay]\njwt-key-file = \"key.pem\"\n", &[("SKYTALE_RELAY_JWKS_URL", "http://x")]);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    assert!(stderr.contains("note: --jwks-url is set by the environment variable SKYTALE_RELAY_JWKS_URL"), "{stderr}");
    assert!(stderr.contains("note: --jwt-key-file is set by `jwt-key-file` in [relay] of "), "{stderr}");

    let missing = std::env::temp_dir().join("skytale-no-such-config.toml");
    let output = relay_command().arg("--config").arg(&missing).output().expect("run skytale");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("cannot read the config file {}", missing.display())), "{stderr}");
    // A bad value from the environment is named by its variable, never repeated beyond clap's own message.
    let output = relay_command().env("SKYTALE_RELAY_MAX_PAYLOAD", "big").output().expect("run skytale");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("note: --max-payload is set by the environment variable SKYTALE_RELAY_MAX_PAYLOAD"));
}

/// docs/skytale.example.toml, which `settings`' unit test holds to every flag and default.
const EXAMPLE_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/skytale.example.toml");

#[test]
fn the_example_config_runs_a_relay_and_an_api_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = relay_command();
    // The example's relay wants a key source (auth = "jwt"); the command line overrides it and the port.
    command.args(["--config", EXAMPLE_CONFIG, "--listen", "127.0.0.1:0", "--auth", "none", "--data-dir"]);
    command.arg(dir.path().join("relay"));
    let relay = spawn_printing(command, 1);
    relay.relay();
    relay.signal("TERM");
    assert!(relay.wait_blocking().0.success());

    let mut command = Command::new(env!("CARGO_BIN_EXE_skytale"));
    command.args(["api", "--config", EXAMPLE_CONFIG, "--listen", "127.0.0.1:0", "--data-dir"]);
    command.arg(dir.path().join("api"));
    let api = spawn_printing(command, 1);
    exported(&api.exports[0], "SKYTALE_API_URL");
    api.signal("TERM");
    assert!(api.wait_blocking().0.success());
}

/// The objects of a JSON log whose spans include one named `name`, each with that span's fields.
fn in_span<'a>(lines: &'a [serde_json::Value], name: &str) -> Vec<(&'a serde_json::Value, &'a serde_json::Value)> {
    lines
        .iter()
        .filter_map(|line| {
            let spans = line.get("spans")?.as_array()?;
            spans.iter().find(|span| span["name"] == name).map(|span| (line, span))
        })
        .collect()
}

/// `skytale dev --log-format json` with two clients creating, joining and using a channel: every log line is a
/// JSON object; the relay's stream lines carry the stream's number and account, and the channel where one is
/// concerned; the API's request lines the account and channel; and no line holds the API key, a token (every JWT
/// starts `eyJ`) or a message's plaintext.
#[test]
fn dev_logs_json_lines_with_stream_account_and_channel_and_never_a_secret() {
    const PLAINTEXT: &str = "plaintext that must never reach a log";
    const CHANNEL: &str = "myorg/team/logged";
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("dev.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_skytale"));
    command.args(["dev", "--relay-port", "0", "--api-port", "0", "--log-format", "json", "--dir"]);
    command.arg(dir.path().join("dev"));
    command.env("RUST_LOG", "info,skytale_relay=debug,skytale_api=debug");
    command.stderr(std::fs::File::create(&log_path).unwrap());
    let running = spawn_printing(command, 3);
    let relay = exported(&running.exports[0], "SKYTALE_RELAY").to_owned();
    let api_url = exported(&running.exports[1], "SKYTALE_API_URL").to_owned();
    let api_key = exported(&running.exports[2], "SKYTALE_API_KEY").to_owned();

    let (alice_dir, bob_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = client(&relay, &api_url, &api_key, alice_dir.path(), "alice");
    let bob = client(&relay, &api_url, &api_key, bob_dir.path(), "bob");
    let channel = alice.create_channel(CHANNEL).unwrap();
    let bobs = add_member(&channel, &bob);
    channel.send(PLAINTEXT.as_bytes()).unwrap();
    match bobs.recv(Some(Duration::from_secs(20))) {
        Ok(Recv::Message(message)) => assert_eq!(message.payload, PLAINTEXT.as_bytes()),
        other => panic!("expected bob to receive, got {other:?}"),
    }
    alice.close();
    bob.close();
    running.signal("TERM");
    assert!(running.wait_blocking().0.success());

    let log = std::fs::read_to_string(&log_path).expect("read the log");
    for secret in [api_key.as_str(), "eyJ", PLAINTEXT, "sk_live_"] {
        assert!(!log.contains(secret), "the log holds {secret:?}:\n{log}");
    }
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
        .collect();
    assert!(lines.iter().all(|line| line["level"].is_string() && line["message"].is_string()), "{log}");

    let streams = in_span(&lines, "stream");
    assert!(streams.iter().any(|(line, _)| line["message"] == "stream opened"), "{log}");
    let account = streams[0].1["account"].as_str().expect("an account on the relay's stream lines").to_owned();
    assert!(streams.iter().all(|(_, span)| span["stream"].is_u64() && span["account"] == account.as_str()), "{log}");
    assert!(streams.iter().any(|(line, _)| line["channel"] == CHANNEL && line["message"] == "subscribed"), "{log}");

    let requests = in_span(&lines, "request");
    let served =
        |route: &str| requests.iter().any(|(_, span)| span["route"] == route && span["account"] == account.as_str());
    assert!(served("/v1/tokens") && served("/v1/channels"), "{log}");
    assert!(requests.iter().any(|(_, span)| span["route"] == "/v1/channels" && span["channel"] == CHANNEL), "{log}");
}
