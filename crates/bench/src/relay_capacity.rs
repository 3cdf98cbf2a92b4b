//! `relay-capacity`: how many messages one relay routes per second, driven by a load generator that speaks the
//! relay's SLIM protocol directly (no client crate, no MLS work on this side).
//!
//! Setup: a `skytale relay --auth none` process on loopback (so its CPU and memory are its own; note that it and
//! this generator share the machine's cores). `--publishers` channels, each with one publishing stream that is
//! also subscribed to its channel (as a real client is: the relay delivers every message to its sender too) and
//! `--subscribers` further subscriber streams; every stream has its own HTTP/2 connection. Each publisher keeps
//! `--in-flight` publishes outstanding (pipelined: the next one goes out as soon as an ack comes back). Payloads
//! are MLS PrivateMessage application messages of the channel's group (clear-text framing the relay checks,
//! opaque bytes for the encrypted parts, a pool of distinct ones), each with a unique idempotency id.
//! After `--warmup-s` the counters are read over `--duration-s`; then publishing stops and the generator waits
//! until every acknowledged message was delivered to every subscriber of its channel.
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

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;
use skytale_proto::pb::{self, message};
use skytale_proto::{meta, ChannelName};
use tokio::sync::Semaphore;

use crate::relay_process::{self, RelayProcess};
use crate::slim_stream::{self, SlimStream};
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

/// Distinct messages each publisher cycles through.
const BLOB_POOL: usize = 64;
/// How long the generator waits for the last deliveries after publishing stopped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Counters shared by every stream of the run.
#[derive(Default)]
struct Counters {
    acked: AtomicU64,
    delivered: AtomicU64,
    /// Latencies are recorded only while the window is open.
    measuring: AtomicBool,
    stop: AtomicBool,
}

pub fn run(args: Args) -> anyhow::Result<serde_json::Value> {
    if args.publishers == 0 || args.in_flight == 0 {
        bail!("--publishers and --in-flight must be at least 1");
    }
    let relay = RelayProcess::start(&args.skytale)?;
    eprintln!("relay-capacity: relay pid {} at {}", relay.pid(), relay.url());
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(measure(&args, &relay))
}

async fn measure(args: &Args, relay: &RelayProcess) -> anyhow::Result<serde_json::Value> {
    let counters = Arc::new(Counters::default());
    let mut subscribers = Vec::new();
    let mut publishers = Vec::new();
    for p in 0..args.publishers {
        let channel = ChannelName::parse(&format!("bench/capacity/channel-{p}"))?;
        for s in 0..args.subscribers {
            let mut stream = SlimStream::open(slim_stream::connect(relay.url()).await?).await?;
            stream.subscribe(&channel, 1).await?;
            subscribers.push(tokio::spawn(count_deliveries(stream, Arc::clone(&counters))));
            eprintln!("relay-capacity: channel {p} subscriber {s} ready");
        }
        let mut stream = SlimStream::open(slim_stream::connect(relay.url()).await?).await?;
        stream.subscribe(&channel, 1).await?;
        let group_id = format!("bench-group-{p}").into_bytes();
        let blobs = (0..BLOB_POOL as u64)
            .map(|i| slim_stream::private_message(&group_id, 0, args.blob_bytes, i))
            .collect::<anyhow::Result<Vec<_>>>()?;
        publishers.push(tokio::spawn(publish(stream, channel, blobs, args.in_flight, Arc::clone(&counters))));
    }

    eprintln!("relay-capacity: {} publishers running, warming up", args.publishers);
    tokio::time::sleep(Duration::from_secs_f64(args.warmup_s)).await;
    let relay_pid = relay.pid().to_string();
    let (relay_cpu0, own_cpu0) = (relay_process::cpu_time(&relay_pid)?, relay_process::cpu_time("self")?);
    let (acked0, delivered0) = (counters.acked.load(Ordering::Relaxed), counters.delivered.load(Ordering::Relaxed));
    let started = Instant::now();
    counters.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(args.duration_s)).await;
    counters.measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let (acked1, delivered1) = (counters.acked.load(Ordering::Relaxed), counters.delivered.load(Ordering::Relaxed));
    let relay_cpu = relay_process::cpu_time(&relay_pid)? - relay_cpu0;
    let own_cpu = relay_process::cpu_time("self")? - own_cpu0;
    let relay_rss = relay_process::rss_bytes(&relay_pid)?;

    eprintln!("relay-capacity: window over, draining");
    counters.stop.store(true, Ordering::Relaxed);
    let (mut acked_total, mut latencies) = (0, Vec::new());
    for publisher in publishers {
        let published = publisher.await??;
        acked_total += published.acked;
        latencies.extend(published.latencies_ms);
        subscribers.push(tokio::spawn(count_deliveries(published.stream, Arc::clone(&counters))));
    }
    let expected = acked_total * (1 + args.subscribers as u64);
    let drained_by = Instant::now() + DRAIN_TIMEOUT;
    while counters.delivered.load(Ordering::Relaxed) < expected && Instant::now() < drained_by {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let undelivered = expected.saturating_sub(counters.delivered.load(Ordering::Relaxed));
    for subscriber in subscribers {
        subscriber.abort();
    }

    let deliveries_per_s = (delivered1 - delivered0) as f64 / elapsed;
    Ok(json!({
        "publishes_acked_per_s": ((acked1 - acked0) as f64 / elapsed).round(),
        "deliveries_per_s": deliveries_per_s.round(),
        "routed_msgs_per_s": deliveries_per_s.round(),
        "ack_latency_p50_ms": round2(percentile(&mut latencies, 50.0)),
        "ack_latency_p99_ms": round2(percentile(&mut latencies, 99.0)),
        "duration_s": round2(elapsed),
        "publishers": args.publishers,
        "subscribers_per_channel": args.subscribers,
        "in_flight_per_publisher": args.in_flight,
        "blob_bytes": args.blob_bytes,
        "relay_cpu_percent": (relay_cpu.as_secs_f64() / elapsed * 100.0).round(),
        "relay_cpu_us_per_routed_msg": round2(relay_cpu.as_secs_f64() * 1e6 / (delivered1 - delivered0).max(1) as f64),
        "generator_cpu_percent": (own_cpu.as_secs_f64() / elapsed * 100.0).round(),
        "relay_rss_bytes": relay_rss,
        "undelivered_messages": undelivered,
    }))
}

/// What one publisher did: acknowledged publishes, its ack latencies in the window, and its stream, which
/// still receives the publisher's own deliveries.
struct Published {
    acked: u64,
    latencies_ms: Vec<f64>,
    stream: SlimStream,
}

/// Publishes with `in_flight` outstanding until told to stop, then waits for the last acks; counts its own
/// deliveries meanwhile (the relay echoes every message to its sender).
async fn publish(
    stream: SlimStream,
    channel: ChannelName,
    blobs: Vec<Vec<u8>>,
    in_flight: usize,
    counters: Arc<Counters>,
) -> anyhow::Result<Published> {
    let SlimStream { outgoing, mut incoming } = stream;
    let window = Arc::new(Semaphore::new(in_flight));
    let sent_at = Arc::new(Mutex::new(VecDeque::<Instant>::with_capacity(in_flight)));
    let mut sender = {
        let (window, sent_at, counters, outgoing) =
            (Arc::clone(&window), Arc::clone(&sent_at), Arc::clone(&counters), outgoing.clone());
        let prefix = format!("{channel}-");
        tokio::spawn(async move {
            let mut sent = 0u64;
            while !counters.stop.load(Ordering::Relaxed) {
                window.acquire().await?.forget();
                let blob = blobs[(sent % blobs.len() as u64) as usize].clone();
                let frame = slim_stream::publish(&channel, blob, format!("{prefix}{sent}"));
                sent_at.lock().unwrap().push_back(Instant::now());
                outgoing.send(frame).await?;
                sent += 1;
            }
            anyhow::Ok(sent)
        })
    };

    let (mut acked, mut sent, mut latencies_ms) = (0u64, None, Vec::new());
    while sent != Some(acked) {
        let frame = tokio::select! {
            total = &mut sender, if sent.is_none() => {
                sent = Some(total??);
                continue;
            }
            frame = incoming.message() => frame?.context("the relay closed a publishing stream")?,
        };
        match classify(frame)? {
            Received::Ack => {
                let at = sent_at.lock().unwrap().pop_front().context("ack without a publish")?;
                if counters.measuring.load(Ordering::Relaxed) {
                    latencies_ms.push(at.elapsed().as_secs_f64() * 1000.0);
                }
                acked += 1;
                counters.acked.fetch_add(1, Ordering::Relaxed);
                window.add_permits(1);
            }
            Received::Delivery => {
                counters.delivered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(Published { acked, latencies_ms, stream: SlimStream { outgoing, incoming } })
}

/// Counts the deliveries a subscriber stream receives until it is aborted.
async fn count_deliveries(mut stream: SlimStream, counters: Arc<Counters>) -> anyhow::Result<()> {
    while let Some(frame) = stream.incoming.message().await? {
        if let Received::Delivery = classify(frame)? {
            counters.delivered.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

enum Received {
    Ack,
    Delivery,
}

/// Tells an ack from a delivery; anything else (an error frame above all) ends the run, naming the problem.
fn classify(frame: pb::Message) -> anyhow::Result<Received> {
    let is_error = match &frame.message_type {
        Some(message::MessageType::Publish(p)) => p.header.as_ref().and_then(|h| h.error).unwrap_or(false),
        other => bail!("unexpected frame from the relay: {other:?}"),
    };
    if is_error {
        bail!(
            "the relay refused a publish: {} ({})",
            frame.metadata.get(meta::ERROR).map_or("", String::as_str),
            frame.metadata.get(meta::ERROR_CODE).map_or("", String::as_str)
        );
    }
    let is_ack = matches!(&frame.message_type, Some(message::MessageType::Publish(p))
        if p.session.as_ref().is_some_and(|s| s.session_message_type == pb::SessionMessageType::MsgAck as i32));
    Ok(if is_ack { Received::Ack } else { Received::Delivery })
}
