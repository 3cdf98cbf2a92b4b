//! A relay run as its own process (`skytale relay --auth none`), so the CPU time and resident memory the relay
//! benchmarks report are the relay's alone, plus the `/proc` readings they are taken from.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

/// A running `skytale relay` with its own temporary directory (its data directory with the SQLite log, and its
/// stderr); killed and removed on drop.
pub struct RelayProcess {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

/// Where a relay keeps its log (docs/relay.md, "Storage").
pub enum Store<'a> {
    /// The embedded SQLite log, in the relay's temporary directory.
    Sqlite,
    /// A JetStream stream with `replicas` copies on the servers `servers` (a `--store` list).
    JetStream { servers: &'a str, replicas: usize },
}

impl RelayProcess {
    /// Starts `skytale relay --auth none` with the SQLite log (see [`RelayProcess::start_on`]).
    pub fn start(skytale: &Path) -> anyhow::Result<Self> {
        Self::start_on(skytale, &Store::Sqlite)
    }

    /// Starts `skytale relay --auth none` on `store` without connection caps on a free loopback port and waits
    /// for its `export SKYTALE_RELAY=...` line. It logs warnings only (per-stream info lines would cost the relay
    /// time we are measuring), to a file whose end is the error when it does not start.
    pub fn start_on(skytale: &Path, store: &Store<'_>) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("creating the relay's directory")?;
        let log_path = dir.path().join("relay.log");
        let log = std::fs::File::create(&log_path).context("creating the relay's log file")?;
        let mut command = Command::new(skytale);
        command.args(["relay", "--auth", "none", "--listen", "127.0.0.1:0"]);
        match store {
            Store::Sqlite => command.arg("--data-dir").arg(dir.path().join("data")),
            Store::JetStream { servers, replicas } => {
                command.args(["--store", servers, "--nats-replicas", &replicas.to_string()])
            }
        };
        let mut child = command
            // The benchmarks measure what one relay carries, with every connection from 127.0.0.1 and, for
            // `idle-streams --streams-per-connection`, many streams on one: the connection caps (docs/relay.md,
            // "Connection limits") would measure themselves instead.
            .args(["--max-connections", "1000000", "--max-connections-per-ip", "1000000"])
            .args(["--max-streams-per-connection", "1000000"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!("starting {} (build it with `cargo build --release -p skytale-cli`)", skytale.display())
            })?;
        let stdout = child.stdout.take().context("relay stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).context("reading the relay's announcement")?;
        let Some(url) = line.trim().strip_prefix("export SKYTALE_RELAY=") else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let last = log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no log");
            bail!("the relay did not announce its address (got {line:?}); its log ends: {last}");
        };
        Ok(Self { url: url.to_owned(), child, _dir: dir })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident set size of process `pid` (`"self"` for this one), from `/proc/PID/status` `VmRSS`.
pub fn rss_bytes(pid: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc status")?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc status")?;
    Ok(kib * 1024)
}

/// CPU time (user + system) process `pid` has used so far, from `/proc/PID/stat`.
#[allow(unsafe_code)] // sysconf
pub fn cpu_time(pid: &str) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("reading /proc stat")?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat.rsplit_once(')').context("malformed /proc stat")?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, i.e. 12 and 13 after the name.
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_micros(ticks * 1_000_000 / per_second))
}

/// Raises this process's open-file limit to its hard limit (children inherit it); returns the new limit.
#[allow(unsafe_code)] // getrlimit, setrlimit
pub fn raise_open_files_limit() -> anyhow::Result<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid rlimit for the duration of both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            bail!("getrlimit: {}", std::io::Error::last_os_error());
        }
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            bail!("setrlimit: {}", std::io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}
