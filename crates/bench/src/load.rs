//! The publish/subscribe load the relay sections (`relay-capacity`, `cluster`) put on relays, speaking SLIM
//! directly (no client crate, no MLS work on this side), and what they read from it.
//!
//! `publishers` channels, each with one publishing stream that is also subscribed to its channel (as a real
//! client is: the relay delivers every message to its sender too) and `subscribers` further subscriber streams;
//! every stream has its own HTTP/2 connection. With several relays (one Delivery Service on a shared log), the
//! publisher of channel `p` uses relay `p`, its subscribers the relays after it in turn, so with two relays every
//! subscriber reads from the relay its publisher does not use. Each publisher keeps up to `in_flight` publishes
//! outstanding (the next one goes out as soon as an ack comes back), optionally paced to a fixed rate. Payloads are
//! MLS PrivateMessage application messages of the channel's group (clear-text framing the relay checks, opaque
//! bytes for the encrypted parts, a pool of distinct ones), each with a unique idempotency id.
//!
//! Every delivery is checked: it must be the channel's next message in publishing order (msg-id and gap-free
//! `skytale-seq`) with exactly the bytes published; anything else ends the run with the reason, so a lost,
//! extra or reordered message never flatters a figure. After `warmup` the counters are read over `duration`; then
//! publishing stops and the run waits until every acknowledged message was delivered to every subscriber.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use skytale_proto::{meta, ChannelName};
use tokio::sync::Semaphore;

use crate::relay_process;
use crate::slim_stream::{self, Received, SlimStream};

/// Distinct messages each publisher cycles through.
const BLOB_POOL: usize = 64;
/// How long the run waits for the last deliveries after publishing stopped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What load to put on the relays.
pub struct Plan {
    /// Names the channels (`bench/LABEL/channel-N`), distinct per run on the same log.
    pub label: String,
    pub publishers: usize,
    /// Subscriber streams per channel besides its publisher.
    pub subscribers: usize,
    pub in_flight: usize,
    pub blob_bytes: usize,
    /// Publishes per second of each publisher; `None`: as fast as acks come back.
    pub pace_per_publisher: Option<f64>,
    pub warmup: Duration,
    pub duration: Duration,
}

/// What the window measured.
pub struct Measured {
    /// Publishes acknowledged (stored) per second.
    pub acked_per_s: f64,
    /// Deliveries per second to every stream, publishers' own included.
    pub deliveries_per_s: f64,
    /// Deliveries per second to the subscriber streams only.
    pub subscriber_deliveries_per_s: f64,
    /// Deliveries in the window, publishers' own included.
    pub deliveries: u64,
    /// Publish sent -> its ack received, for publishes acknowledged in the window.
    pub ack_latencies_ms: Vec<f64>,
    pub elapsed_s: f64,
    /// CPU time of each watched process over the window, and this one's.
    pub cpu: Vec<Duration>,
    pub own_cpu: Duration,
    /// Resident memory of each watched process at the end of the window.
    pub rss_bytes: Vec<u64>,
    /// Acknowledged messages some subscriber had not received by the end (expected 0).
    pub undelivered: u64,
}

/// Counters shared by every stream of the run.
#[derive(Default)]
struct Counters {
    acked: AtomicU64,
    delivered: AtomicU64,
    echoed: AtomicU64,
    /// Latencies are recorded only while the window is open.
    measuring: AtomicBool,
    stop: AtomicBool,
}

/// Runs `plan` against `relays` (URLs), watching the CPU and memory of the processes `watch`.
pub async fn run(plan: &Plan, relays: &[String], watch: &[u32]) -> anyhow::Result<Measured> {
    if plan.publishers == 0 || plan.in_flight == 0 || relays.is_empty() {
        bail!("a load needs at least one publisher, one publish in flight and one relay");
    }
    let counters = Arc::new(Counters::default());
    let mut subscribers = Vec::new();
    let mut publishers = Vec::new();
    for p in 0..plan.publishers {
        let channel = ChannelName::parse(&format!("bench/{}/channel-{p}", plan.label))?;
        let group_id = format!("bench-group-{p}").into_bytes();
        let blobs = (0..BLOB_POOL as u64)
            .map(|i| slim_stream::private_message(&group_id, 0, plan.blob_bytes, i))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let expected = Expected { prefix: format!("{channel}-").into(), blobs: Arc::new(blobs) };
        for s in 0..plan.subscribers {
            let relay = &relays[(p + 1 + s) % relays.len()];
            let mut stream = SlimStream::open(slim_stream::connect(relay).await?).await?;
            stream.subscribe(&channel, 1).await?;
            let check = Check::new(expected.clone(), &channel);
            subscribers.push(tokio::spawn(count_deliveries(stream, check, Arc::clone(&counters), Reader::Subscriber)));
        }
        let mut stream = SlimStream::open(slim_stream::connect(&relays[p % relays.len()]).await?).await?;
        stream.subscribe(&channel, 1).await?;
        let publisher = Publisher { channel, expected, in_flight: plan.in_flight, pace: plan.pace_per_publisher };
        publishers.push(tokio::spawn(publisher.run(stream, Arc::clone(&counters))));
    }
    eprintln!(
        "  {}: {} publishers, {} subscribers each, on {} relay(s); warming up",
        plan.label,
        plan.publishers,
        plan.subscribers,
        relays.len()
    );

    tokio::time::sleep(plan.warmup).await;
    let pids: Vec<String> = watch.iter().map(u32::to_string).collect();
    let cpu0 = pids.iter().map(|pid| relay_process::cpu_time(pid)).collect::<anyhow::Result<Vec<_>>>()?;
    let own_cpu0 = relay_process::cpu_time("self")?;
    let read = |c: &Counters| [&c.acked, &c.delivered, &c.echoed].map(|counter| counter.load(Ordering::Relaxed));
    let before = read(&counters);
    let started = Instant::now();
    counters.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(plan.duration).await;
    counters.measuring.store(false, Ordering::Relaxed);
    let elapsed_s = started.elapsed().as_secs_f64();
    let after = read(&counters);
    let mut cpu = Vec::new();
    for (pid, start) in pids.iter().zip(cpu0) {
        cpu.push(relay_process::cpu_time(pid)? - start);
    }
    let own_cpu = relay_process::cpu_time("self")? - own_cpu0;
    let rss_bytes = pids.iter().map(|pid| relay_process::rss_bytes(pid)).collect::<anyhow::Result<Vec<_>>>()?;

    counters.stop.store(true, Ordering::Relaxed);
    let (mut acked_total, mut ack_latencies_ms) = (0, Vec::new());
    for publisher in publishers {
        let published = publisher.await??;
        acked_total += published.acked;
        ack_latencies_ms.extend(published.latencies_ms);
        let (stream, check) = (published.stream, published.check);
        subscribers.push(tokio::spawn(count_deliveries(stream, check, Arc::clone(&counters), Reader::Publisher)));
    }
    let expected = acked_total * (1 + plan.subscribers as u64);
    let delivered = || counters.delivered.load(Ordering::Relaxed) + counters.echoed.load(Ordering::Relaxed);
    let drained_by = Instant::now() + DRAIN_TIMEOUT;
    while delivered() < expected && Instant::now() < drained_by {
        // A subscriber that found a wrong delivery has ended with the reason: report it now.
        if let Some(finished) = subscribers.iter_mut().find(|s| s.is_finished()) {
            finished.await??;
            bail!("a subscriber stream ended before it had every message");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let undelivered = expected.saturating_sub(delivered());
    for subscriber in subscribers {
        subscriber.abort();
    }

    let per_s = |i: usize| (after[i] - before[i]) as f64 / elapsed_s;
    Ok(Measured {
        acked_per_s: per_s(0),
        deliveries_per_s: per_s(1) + per_s(2),
        subscriber_deliveries_per_s: per_s(1),
        deliveries: (after[1] - before[1]) + (after[2] - before[2]),
        ack_latencies_ms,
        elapsed_s,
        cpu,
        own_cpu,
        rss_bytes,
        undelivered,
    })
}

/// What a channel's deliveries must be: its publisher's messages, message `i` with msg-id `PREFIX` + `i` and
/// the bytes `blobs[i % len]`.
#[derive(Clone)]
struct Expected {
    prefix: Arc<str>,
    blobs: Arc<Vec<Vec<u8>>>,
}

/// Checks one stream's deliveries of one channel, in order.
struct Check {
    expected: Expected,
    channel: ChannelName,
    next: u64,
}

impl Check {
    fn new(expected: Expected, channel: &ChannelName) -> Self {
        Check { expected, channel: channel.clone(), next: 0 }
    }

    /// Accepts `frame` if it is the channel's next message, exactly as published.
    fn delivery(&mut self, frame: &skytale_proto::pb::Message) -> anyhow::Result<()> {
        let i = self.next;
        let msg_id = frame.metadata.get(meta::MSG_ID).map_or("", String::as_str);
        let number = msg_id.strip_prefix(&*self.expected.prefix).and_then(|n| n.parse::<u64>().ok());
        if number != Some(i) {
            bail!("{}: delivery {msg_id:?} where message {i} was due (lost, extra or reordered)", self.channel);
        }
        let seq = frame.metadata.get(meta::SEQ).and_then(|s| s.parse::<u64>().ok());
        if seq != Some(i + 1) {
            bail!("{}: message {i} delivered with skytale-seq {seq:?}, expected {}", self.channel, i + 1);
        }
        let blobs = &self.expected.blobs;
        if slim_stream::delivered_blob(frame) != Some(blobs[(i % blobs.len() as u64) as usize].as_slice()) {
            bail!("{}: message {i} delivered with other bytes than were published", self.channel);
        }
        self.next += 1;
        Ok(())
    }
}

/// One channel's publishing stream.
struct Publisher {
    channel: ChannelName,
    expected: Expected,
    in_flight: usize,
    pace: Option<f64>,
}

/// What one publisher did: acknowledged publishes, its ack latencies in the window, and its stream, which
/// still receives the publisher's own deliveries (with their check).
struct Published {
    acked: u64,
    latencies_ms: Vec<f64>,
    stream: SlimStream,
    check: Check,
}

impl Publisher {
    /// Publishes with up to `in_flight` outstanding (at `pace` per second if set) until told to stop, then waits
    /// for the last acks; checks its own deliveries meanwhile.
    async fn run(self, stream: SlimStream, counters: Arc<Counters>) -> anyhow::Result<Published> {
        let SlimStream { outgoing, mut incoming } = stream;
        let mut check = Check::new(self.expected.clone(), &self.channel);
        let window = Arc::new(Semaphore::new(self.in_flight));
        let sent_at = Arc::new(Mutex::new(VecDeque::<Instant>::with_capacity(self.in_flight)));
        let mut sender = {
            let (window, sent_at, counters, outgoing) =
                (Arc::clone(&window), Arc::clone(&sent_at), Arc::clone(&counters), outgoing.clone());
            let Publisher { channel, expected, pace, .. } = self;
            tokio::spawn(async move {
                let (started, mut sent) = (tokio::time::Instant::now(), 0u64);
                while !counters.stop.load(Ordering::Relaxed) {
                    if let Some(rate) = pace {
                        tokio::time::sleep_until(started + Duration::from_secs_f64(sent as f64 / rate)).await;
                    }
                    window.acquire().await?.forget();
                    let blob = expected.blobs[(sent % expected.blobs.len() as u64) as usize].clone();
                    let frame = slim_stream::publish(&channel, blob, format!("{}{sent}", expected.prefix));
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
            match slim_stream::classify(&frame)? {
                Received::Ack => {
                    let at = sent_at.lock().unwrap().pop_front().context("ack without a publish")?;
                    if counters.measuring.load(Ordering::Relaxed) {
                        latencies_ms.push(at.elapsed().as_secs_f64() * 1000.0);
                    }
                    acked += 1;
                    counters.acked.fetch_add(1, Ordering::Relaxed);
                    window.add_permits(1);
                }
                Received::Refused { code, reason } => bail!("the relay refused a publish: {reason} ({code})"),
                Received::Delivery => {
                    check.delivery(&frame)?;
                    counters.echoed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(Published { acked, latencies_ms, stream: SlimStream { outgoing, incoming }, check })
    }
}

/// Whose deliveries a stream counts: a subscriber's, or a publisher's own.
#[derive(Clone, Copy)]
enum Reader {
    Subscriber,
    Publisher,
}

/// Checks and counts the deliveries a stream receives until it is aborted; a wrong one ends it with the reason.
async fn count_deliveries(
    mut stream: SlimStream,
    mut check: Check,
    counters: Arc<Counters>,
    reader: Reader,
) -> anyhow::Result<()> {
    let counter = match reader {
        Reader::Subscriber => &counters.delivered,
        Reader::Publisher => &counters.echoed,
    };
    while let Some(frame) = stream.incoming.message().await? {
        match slim_stream::classify(&frame)? {
            Received::Delivery => {
                check.delivery(&frame)?;
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Received::Ack => bail!("{}: an ack on a stream that has no publish outstanding", check.channel),
            Received::Refused { code, reason } => {
                bail!("{}: the relay sent an error: {reason} ({code})", check.channel)
            }
        }
    }
    Ok(())
}
