//! `idle-streams`: resident memory a relay needs per idle subscribed stream.
//!
//! Starts a `skytale relay --auth none` process, reads its resident set (`/proc/PID/status` `VmRSS`), then opens
//! streams up to each `--counts` total (cumulatively: 1 000, then 9 000 more for 10 000). Every stream does what
//! a real client does on connect: link negotiation, then a live subscription to a channel of its own
//! (`bench/idle/stream-N`), acknowledged by the relay, and then stays idle. By default each stream has its own
//! HTTP/2 connection like a real client (`--streams-per-connection` multiplexes several on one instead); the
//! open-file limit of this process, and so of the relay it starts, is raised to its hard limit for that.
//! After the last stream of a step is open the relay's RSS is sampled until it settles.
//!
//! Output keys:
//! - `baseline_rss_bytes`: the relay's RSS with no stream open.
//! - `steps`: one object per count: `streams`, `relay_rss_bytes`, `relay_bytes_per_stream`
//!   ((RSS - baseline) / streams: connection, stream, subscription and channel state together),
//!   `client_bytes_per_stream` (this generator's own RSS growth per stream, tonic client side), `open_s` (time to
//!   open the step's streams).
//! - `streams_per_connection`, `open_files_limit`: how the streams were carried.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::json;
use skytale_proto::ChannelName;

use crate::relay_process::{self, RelayProcess};
use crate::slim_stream::{self, SlimStream};
use crate::stats::round2;

#[derive(clap::Args)]
pub struct Args {
    /// The `skytale` binary that runs the relay.
    #[arg(long, default_value = "target/release/skytale")]
    skytale: PathBuf,
    /// Total streams to measure at, in increasing order.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 10_000])]
    counts: Vec<usize>,
    /// Streams sharing one HTTP/2 connection (1: one connection per stream, as real clients have).
    #[arg(long, default_value_t = 1)]
    streams_per_connection: usize,
    /// Measure a relay already running at this URL (e.g. under a heap profiler) instead of starting one.
    #[arg(long, requires = "relay_pid")]
    relay_url: Option<String>,
    /// Process id of the relay given with `--relay-url`, for its RSS.
    #[arg(long, requires = "relay_url")]
    relay_pid: Option<u32>,
}

/// Streams being opened at once.
const OPENING_CONCURRENCY: usize = 64;
/// RSS sampling interval while waiting for it to settle, and the longest wait.
const SETTLE_INTERVAL: Duration = Duration::from_millis(500);
const SETTLE_MAX: Duration = Duration::from_secs(15);

pub fn run(args: Args) -> anyhow::Result<serde_json::Value> {
    if args.streams_per_connection == 0 || args.counts.windows(2).any(|w| w[0] >= w[1]) || args.counts.contains(&0) {
        bail!("--counts must increase from at least 1, and --streams-per-connection be at least 1");
    }
    let open_files_limit = relay_process::raise_open_files_limit()?;
    let needed = args.counts.last().copied().unwrap_or(0) / args.streams_per_connection + 100;
    if (open_files_limit as usize) < needed {
        bail!("{needed} connections need more open files than the hard limit {open_files_limit} allows");
    }
    let started = match (&args.relay_url, args.relay_pid) {
        (Some(url), Some(pid)) => (None, url.clone(), pid),
        _ => {
            let relay = RelayProcess::start(&args.skytale)?;
            let (url, pid) = (relay.url().to_owned(), relay.pid());
            (Some(relay), url, pid)
        }
    };
    let (_relay, url, pid) = started;
    eprintln!("idle-streams: relay pid {pid} at {url}");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut figures = runtime.block_on(measure(&args, &url, pid))?;
    figures["open_files_limit"] = json!(open_files_limit);
    // The streams are dropped with the runtime: shut it down without waiting for 10 000 connection tasks.
    runtime.shutdown_background();
    Ok(figures)
}

async fn measure(args: &Args, url: &str, pid: u32) -> anyhow::Result<serde_json::Value> {
    let pid = pid.to_string();
    let baseline = settled_rss(&pid).await?;
    let client_baseline = relay_process::rss_bytes("self")?;
    eprintln!("idle-streams: baseline RSS {baseline} bytes");
    let mut streams: Vec<SlimStream> = Vec::new();
    let mut steps = Vec::new();
    for &count in &args.counts {
        let started = Instant::now();
        let first = streams.len();
        if first >= count {
            continue;
        }
        // Streams n..n+streams_per_connection share one connection.
        let groups: Vec<Vec<usize>> =
            (first..count).collect::<Vec<_>>().chunks(args.streams_per_connection).map(<[usize]>::to_vec).collect();
        let opened: Vec<Vec<SlimStream>> = stream::iter(groups)
            .map(|group| open_group(url, group))
            .buffer_unordered(OPENING_CONCURRENCY)
            .try_collect()
            .await?;
        streams.extend(opened.into_iter().flatten());
        let open_s = started.elapsed().as_secs_f64();
        let rss = settled_rss(&pid).await?;
        let client_rss = relay_process::rss_bytes("self")?;
        eprintln!("idle-streams: {count} streams open in {open_s:.1} s, relay RSS {rss} bytes");
        steps.push(json!({
            "streams": count,
            "relay_rss_bytes": rss,
            "relay_bytes_per_stream": (rss.saturating_sub(baseline) as f64 / count as f64).round(),
            "client_bytes_per_stream": (client_rss.saturating_sub(client_baseline) as f64 / count as f64).round(),
            "open_s": round2(open_s),
        }));
    }
    Ok(json!({
        "baseline_rss_bytes": baseline,
        "steps": steps,
        "streams_per_connection": args.streams_per_connection,
    }))
}

/// Opens one connection and, on it, one subscribed stream for each of `indices`.
async fn open_group(url: &str, indices: Vec<usize>) -> anyhow::Result<Vec<SlimStream>> {
    let connection = slim_stream::connect(url).await?;
    let mut streams = Vec::with_capacity(indices.len());
    for n in indices {
        let mut stream = SlimStream::open(connection.clone()).await?;
        stream.subscribe(&ChannelName::parse(&format!("bench/idle/stream-{n}"))?, 1).await?;
        streams.push(stream);
    }
    Ok(streams)
}

/// The relay's RSS once two samples in a row differ by less than 0.5 % (or after [`SETTLE_MAX`]).
async fn settled_rss(pid: &str) -> anyhow::Result<u64> {
    let deadline = Instant::now() + SETTLE_MAX;
    let mut last = relay_process::rss_bytes(pid)?;
    loop {
        tokio::time::sleep(SETTLE_INTERVAL).await;
        let now = relay_process::rss_bytes(pid)?;
        if now.abs_diff(last) * 200 < last || Instant::now() >= deadline {
            return Ok(now);
        }
        last = now;
    }
}
