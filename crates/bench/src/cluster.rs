//! `cluster`: the relay on each of its logs, measured in one run the same way: the embedded SQLite log behind one
//! relay, a JetStream stream with one replica on one nats-server behind one relay, and a JetStream stream with
//! three replicas on a 3-server cluster behind two relays (docs/relay.md, "The JetStream log"). Every process is
//! started here on loopback (`skytale relay --auth none` processes, nats-server from `SKYTALE_NATS_SERVER` or
//! `.venv/bin/nats-server`) and killed when its setup is done.
//!
//! For each setup:
//! 1. **routed messages/s**: the load of `load.rs` (`--publishers` channels, each with a pipelining publisher and
//!    one more subscriber, every delivery checked), publishers and subscribers on different relays where there
//!    are two: deliveries per second, as `relay-capacity` counts them.
//! 2. **ack latency at half of peak**: the same streams on fresh channels, each publisher paced so that together
//!    they publish half the publishes per second acknowledged in 1; publish sent -> its ack, p50 / p99.
//! 3. **competing commits resolved/s**: `commit_race.rs` on `--race-channels` channels, the two contenders of a
//!    channel on different relays where there are two.
//! 4. **fan-out 1 -> N**: one pipelining publisher and `--fanout-subscribers` subscribers of its channel, split
//!    across the relays: deliveries per second to the subscribers.
//!
//! Output: one object per setup (`sqlite`, `jetstream_r1`, `jetstream_r3`), or `{"unavailable": why}` for a
//! setup that could not be started or measured; keys in `docs/benchmarks.md`, "Cluster".

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use crate::commit_race::{self, Race};
use crate::load::{self, Measured, Plan};
use crate::nats_process::NatsServers;
use crate::relay_process::{RelayProcess, Store};
use crate::stats::{percentile, round2};

#[derive(clap::Args)]
pub struct Args {
    /// The `skytale` binary that runs the relays.
    #[arg(long, default_value = "target/release/skytale")]
    skytale: PathBuf,
    /// The setups to measure, in order: sqlite, jetstream-r1, jetstream-r3.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,jetstream-r1,jetstream-r3")]
    setups: Vec<SetupKind>,
    /// Publishing streams (one channel each) of the routed and paced loads.
    #[arg(long, default_value_t = 8)]
    publishers: usize,
    /// Publishes each publisher keeps outstanding at peak.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// Size of each MLS message, in bytes.
    #[arg(long, default_value_t = 256)]
    blob_bytes: usize,
    /// Channels racing competing commits side by side.
    #[arg(long, default_value_t = 8)]
    race_channels: usize,
    /// Subscribers of the fan-out channel.
    #[arg(long, default_value_t = 100)]
    fanout_subscribers: usize,
    /// Seconds of load before each measured window.
    #[arg(long, default_value_t = 2.0)]
    warmup_s: f64,
    /// Seconds each figure is measured over.
    #[arg(long, default_value_t = 5.0)]
    duration_s: f64,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SetupKind {
    Sqlite,
    JetstreamR1,
    JetstreamR3,
}

impl SetupKind {
    fn key(self) -> &'static str {
        match self {
            SetupKind::Sqlite => "sqlite",
            SetupKind::JetstreamR1 => "jetstream_r1",
            SetupKind::JetstreamR3 => "jetstream_r3",
        }
    }
}

/// Attempts at starting the first relay on a fresh JetStream cluster: `/healthz` can answer before the meta
/// leader accepts a replicated stream, and the relay then exits saying so.
const RELAY_START_ATTEMPTS: usize = 5;
const RELAY_START_PAUSE: Duration = Duration::from_secs(1);

/// The processes of one setup; dropping it stops them.
struct Setup {
    relays: Vec<RelayProcess>,
    nats: Option<NatsServers>,
}

impl Setup {
    fn start(kind: SetupKind, skytale: &std::path::Path) -> anyhow::Result<Setup> {
        let (servers, replicas, relays) = match kind {
            SetupKind::Sqlite => return Ok(Setup { relays: vec![RelayProcess::start(skytale)?], nats: None }),
            SetupKind::JetstreamR1 => (1, 1, 1),
            SetupKind::JetstreamR3 => (3, 3, 2),
        };
        let nats = NatsServers::start(servers)?;
        let url = nats.store_url();
        let store = Store::JetStream { servers: &url, replicas };
        let mut started = Vec::new();
        let mut attempt = 1;
        while started.len() < relays {
            match RelayProcess::start_on(skytale, &store) {
                Ok(relay) => started.push(relay),
                Err(error) if started.is_empty() && attempt < RELAY_START_ATTEMPTS => {
                    eprintln!("cluster: relay on {url} did not start ({error:#}); trying again");
                    attempt += 1;
                    std::thread::sleep(RELAY_START_PAUSE);
                }
                Err(error) => return Err(error),
            }
        }
        Ok(Setup { relays: started, nats: Some(nats) })
    }

    fn urls(&self) -> Vec<String> {
        self.relays.iter().map(|relay| relay.url().to_owned()).collect()
    }

    /// The relays' pids, then the NATS servers'.
    fn pids(&self) -> (Vec<u32>, Vec<u32>) {
        (
            self.relays.iter().map(RelayProcess::pid).collect(),
            self.nats.as_ref().map(NatsServers::pids).unwrap_or_default(),
        )
    }
}

pub fn run(args: Args) -> anyhow::Result<Value> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut figures = serde_json::Map::new();
    for &kind in &args.setups {
        eprintln!("cluster: {}", kind.key());
        let measured =
            Setup::start(kind, &args.skytale).and_then(|setup| runtime.block_on(measure(&args, kind, &setup)));
        let value = measured.unwrap_or_else(|error| {
            eprintln!("cluster: {} unavailable: {error:#}", kind.key());
            json!({ "unavailable": format!("{error:#}") })
        });
        figures.insert(kind.key().to_owned(), value);
    }
    Ok(Value::Object(figures))
}

async fn measure(args: &Args, kind: SetupKind, setup: &Setup) -> anyhow::Result<Value> {
    let urls = setup.urls();
    let (relay_pids, nats_pids) = setup.pids();
    let watch: Vec<u32> = relay_pids.iter().chain(&nats_pids).copied().collect();
    let plan = |what: &str, publishers, subscribers, in_flight, pace| Plan {
        label: format!("{}-{what}", kind.key()),
        publishers,
        subscribers,
        in_flight,
        blob_bytes: args.blob_bytes,
        pace_per_publisher: pace,
        warmup: Duration::from_secs_f64(args.warmup_s),
        duration: Duration::from_secs_f64(args.duration_s),
    };

    let mut peak = load::run(&plan("routed", args.publishers, 1, args.in_flight, None), &urls, &watch).await?;
    let half_rate = peak.acked_per_s / 2.0;
    eprintln!("cluster: {} peak {:.0} acked/s; pacing at {half_rate:.0}/s", kind.key(), peak.acked_per_s);
    // Open loop: the window is wide enough that the pace, not the acks, decides when a publish goes out.
    let paced_plan = plan("paced", args.publishers, 1, args.in_flight * 16, Some(half_rate / args.publishers as f64));
    let mut paced = load::run(&paced_plan, &urls, &watch).await?;
    let race = Race {
        label: format!("{}-race", kind.key()),
        channels: args.race_channels,
        commit_bytes: args.blob_bytes,
        duration: Duration::from_secs_f64(args.duration_s),
    };
    let mut resolved = commit_race::run(&race, &urls).await?;
    let fanout = load::run(&plan("fanout", 1, args.fanout_subscribers, args.in_flight, None), &urls, &watch).await?;

    let split = |m: &Measured| {
        let (relays, nats) = m.cpu.split_at(relay_pids.len());
        let sum = |d: &[Duration]| d.iter().map(Duration::as_secs_f64).sum::<f64>();
        (sum(relays), sum(nats), m.own_cpu.as_secs_f64())
    };
    let (relay_cpu, nats_cpu, own_cpu) = split(&peak);
    let per_msg = |cpu: f64| round2(cpu * 1e6 / peak.deliveries.max(1) as f64);
    let percent = |cpu: f64| (cpu / peak.elapsed_s * 100.0).round();
    // No NATS servers, no NATS figures (null rather than a 0 that reads as "free").
    let has_nats = !nats_pids.is_empty();
    let (nats_percent, nats_per_msg) = (has_nats.then(|| percent(nats_cpu)), has_nats.then(|| per_msg(nats_cpu)));
    Ok(json!({
        "relays": relay_pids.len(),
        "nats_servers": nats_pids.len(),
        "routed_msgs_per_s": peak.deliveries_per_s.round(),
        "publishes_acked_per_s": peak.acked_per_s.round(),
        "peak_ack_latency_p50_ms": round2(percentile(&mut peak.ack_latencies_ms, 50.0)),
        "peak_ack_latency_p99_ms": round2(percentile(&mut peak.ack_latencies_ms, 99.0)),
        "cpu_percent": {"relays": percent(relay_cpu), "nats": nats_percent, "generator": percent(own_cpu)},
        "cpu_us_per_routed_msg": {"relays": per_msg(relay_cpu), "nats": nats_per_msg, "generator": per_msg(own_cpu)},
        "half_load_target_per_s": half_rate.round(),
        "half_load_acked_per_s": paced.acked_per_s.round(),
        "half_load_ack_latency_p50_ms": round2(percentile(&mut paced.ack_latencies_ms, 50.0)),
        "half_load_ack_latency_p99_ms": round2(percentile(&mut paced.ack_latencies_ms, 99.0)),
        "commit_rounds_resolved_per_s": round2(resolved.rounds as f64 / resolved.elapsed_s),
        "commit_rounds": resolved.rounds,
        "commit_round_p50_ms": round2(percentile(&mut resolved.round_ms, 50.0)),
        "commit_round_p99_ms": round2(percentile(&mut resolved.round_ms, 99.0)),
        "fanout_subscribers": args.fanout_subscribers,
        "fanout_deliveries_per_s": fanout.subscriber_deliveries_per_s.round(),
        "undelivered_messages": peak.undelivered + paced.undelivered + fanout.undelivered,
        "publishers": args.publishers,
        "in_flight_per_publisher": args.in_flight,
        "blob_bytes": args.blob_bytes,
        "race_channels": args.race_channels,
        "duration_s": args.duration_s,
    }))
}
