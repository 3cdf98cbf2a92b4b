//! `relay-capacity`: how many messages one relay routes per second, driven by a load generator that speaks the
//! relay's SLIM protocol directly (no client crate, no MLS work on this side).
//!
//! Setup: a `skytale relay --auth none` process on loopback (so its CPU and memory are its own; note that it and
//! this generator share the machine's cores), and the load of `load.rs`: `--publishers` channels with one
//! pipelining publisher and `--subscribers` further subscribers each, every delivery checked.
//!
//! Output keys:
//! - `publishes_acked_per_s`: publishes the relay acknowledged (stored in its durable log) per second.
//! - `deliveries_per_s`: messages delivered to subscriber streams per second (= acked × (1 + subscribers)).
//! - `routed_msgs_per_s`: the headline figure, **deliveries per second**: one routed message is one message
//!   handed from a publisher, through the durable log, to one subscriber. Acks are not counted.
//! - `ack_latency_p50_ms`, `ack_latency_p99_ms`: publish sent -> its ack received, under this load (they include
//!   the queueing the in-flight window causes).
//! - `duration_s`, `publishers`, `subscribers_per_channel`, `in_flight_per_publisher`, `blob_bytes`: the run.
//! - `relay_cpu_percent`, `generator_cpu_percent`: CPU time / wall time over the window (100 = one core).
//! - `relay_cpu_us_per_routed_msg`: relay CPU time per delivery; steadier than the rates on a shared machine.
//! - `relay_rss_bytes`: the relay's resident memory at the end of the window.
//! - `undelivered_messages`: acknowledged messages some subscriber had not received by the end (expected 0).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::load::{self, Plan};
use crate::relay_process::RelayProcess;
use crate::stats::{percentile, round2};

#[derive(clap::Args)]
pub struct Args {
    /// The `skytale` binary that runs the relay.
    #[arg(long, default_value = "target/release/skytale")]
    skytale: PathBuf,
    /// Publishing streams, one channel each.
    #[arg(long, default_value_t = 8)]
    publishers: usize,
    /// Subscriber streams per channel besides its publisher.
    #[arg(long, default_value_t = 1)]
    subscribers: usize,
    /// Publishes each publisher keeps outstanding.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// Size of each MLS message (the publish's blob), in bytes.
    #[arg(long, default_value_t = 256)]
    blob_bytes: usize,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup_s: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration_s: f64,
}

pub fn run(args: Args) -> anyhow::Result<serde_json::Value> {
    let relay = RelayProcess::start(&args.skytale)?;
    eprintln!("relay-capacity: relay pid {} at {}", relay.pid(), relay.url());
    let plan = Plan {
        label: "capacity".to_owned(),
        publishers: args.publishers,
        subscribers: args.subscribers,
        in_flight: args.in_flight,
        blob_bytes: args.blob_bytes,
        pace_per_publisher: None,
        warmup: Duration::from_secs_f64(args.warmup_s),
        duration: Duration::from_secs_f64(args.duration_s),
    };
    let relays = [relay.url().to_owned()];
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut m = runtime.block_on(load::run(&plan, &relays, &[relay.pid()]))?;
    let relay_cpu_s = m.cpu[0].as_secs_f64();
    Ok(json!({
        "publishes_acked_per_s": m.acked_per_s.round(),
        "deliveries_per_s": m.deliveries_per_s.round(),
        "routed_msgs_per_s": m.deliveries_per_s.round(),
        "ack_latency_p50_ms": round2(percentile(&mut m.ack_latencies_ms, 50.0)),
        "ack_latency_p99_ms": round2(percentile(&mut m.ack_latencies_ms, 99.0)),
        "duration_s": round2(m.elapsed_s),
        "publishers": args.publishers,
        "subscribers_per_channel": args.subscribers,
        "in_flight_per_publisher": args.in_flight,
        "blob_bytes": args.blob_bytes,
        "relay_cpu_percent": (relay_cpu_s / m.elapsed_s * 100.0).round(),
        "relay_cpu_us_per_routed_msg": round2(relay_cpu_s * 1e6 / m.deliveries.max(1) as f64),
        "generator_cpu_percent": (m.own_cpu.as_secs_f64() / m.elapsed_s * 100.0).round(),
        "relay_rss_bytes": m.rss_bytes[0],
        "undelivered_messages": m.undelivered,
    }))
}
