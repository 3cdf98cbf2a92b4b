//! `throughput`: sustained Rust-API throughput through a real relay (in-process on loopback with auth off, or
//! `--relay URL`), everything through `skytale_client::{Client, Channel}`: MLS, the client's SQLite state and
//! the relay's durable log included.
//!
//! * 1 -> 1, `one_to_one`: one sender calls `send` back to back (each returns once the relay stored the message)
//!   while one receiver counts with `recv`. `msgs_per_s` / `mb_per_s` run until the receiver has every message;
//!   `sender_msgs_per_s` until the last `send` returned.
//! * 1 -> 1 batched, `one_to_one_batched`: the same with `send_many` of `--batch` messages and `recv_many`.
//! * 1 -> N fan-out for each N of `--fanouts`, batched as above: deliveries/s = messages * N / time until every
//!   receiver has all of them.
//!
//! JSON keys: `payload_bytes`, `batch`, `one_to_one` and `one_to_one_batched`: `{messages, msgs_per_s, mb_per_s,
//! sender_msgs_per_s}`, `fanout: {"<N>": {receivers, messages, deliveries_per_s, seconds}}`. MB is 10^6 bytes of
//! payload.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use skytale_client::{Channel, Received, Recv};

use crate::fixture::Site;
use crate::stats::round2;

/// The longest a receiver waits for one message before the run is declared stuck.
const RECV_PATIENCE: Duration = Duration::from_secs(30);

#[derive(clap::Args)]
pub struct Args {
    /// Relay URL; without it an in-process relay is started on loopback.
    #[arg(long)]
    relay: Option<String>,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 100)]
    payload_bytes: usize,
    /// Messages sent 1 -> 1.
    #[arg(long, default_value_t = 3000)]
    messages: usize,
    /// Receiver counts for the fan-out runs, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10,100")]
    fanouts: Vec<usize>,
    /// Deliveries per fan-out run (messages = this / receivers, at least 10).
    #[arg(long, default_value_t = 30_000)]
    fanout_deliveries: usize,
    /// Messages per `send_many` / most per `recv_many` in the batched runs.
    #[arg(long, default_value_t = 100)]
    batch: usize,
}

/// How the sender sends and the receivers take messages.
#[derive(Clone, Copy)]
enum Mode {
    /// `send` and `recv`, one message at a time.
    Sequential,
    /// `send_many` and `recv_many` of up to this many.
    Batched(usize),
}

pub fn run(args: Args) -> anyhow::Result<serde_json::Value> {
    let site = Site::start(args.relay.clone())?;
    eprintln!("throughput: relay {}", site.endpoint());
    let payload = vec![0x42; args.payload_bytes];

    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    let batched = Mode::Batched(args.batch);
    let mut one_to_one = BTreeMap::new();
    for (key, mode) in [("one_to_one", Mode::Sequential), ("one_to_one_batched", batched)] {
        eprintln!("throughput: {key}, {} messages", args.messages);
        let run = Run::new(&site, &key.replace('_', "-"), 1)?;
        let figures = run.measure(&payload, args.messages, mode)?;
        run.close();
        one_to_one.insert(
            key,
            json!({
                "messages": args.messages,
                "msgs_per_s": figures.deliveries_per_s().round(),
                "mb_per_s": round2(figures.deliveries_per_s() * args.payload_bytes as f64 / 1e6),
                "sender_msgs_per_s": (args.messages as f64 / figures.sending.as_secs_f64()).round(),
            }),
        );
    }

    let mut fanout = BTreeMap::new();
    for &receivers in &args.fanouts {
        let messages = (args.fanout_deliveries / receivers.max(1)).max(10);
        eprintln!("throughput: 1 -> {receivers}, {messages} messages");
        let run = Run::new(&site, &format!("fanout-{receivers}"), receivers)?;
        let figures = run.measure(&payload, messages, batched)?;
        run.close();
        fanout.insert(
            receivers.to_string(),
            json!({
                "receivers": receivers,
                "messages": messages,
                "deliveries_per_s": figures.deliveries_per_s().round(),
                "seconds": round2(figures.until_all.as_secs_f64()),
            }),
        );
    }
    site.stop();
    Ok(json!({
        "payload_bytes": args.payload_bytes,
        "batch": args.batch,
        "one_to_one": one_to_one["one_to_one"],
        "one_to_one_batched": one_to_one["one_to_one_batched"],
        "fanout": fanout,
    }))
}

/// One sender and its receivers, all joined to one channel.
struct Run {
    sender: skytale_client::Client,
    channel: Channel,
    receivers: Vec<(skytale_client::Client, Channel)>,
}

struct Figures {
    deliveries: usize,
    /// Until the last `send` returned.
    sending: Duration,
    /// Until every receiver had every message.
    until_all: Duration,
}

impl Figures {
    fn deliveries_per_s(&self) -> f64 {
        self.deliveries as f64 / self.until_all.as_secs_f64()
    }
}

impl Run {
    fn new(site: &Site, label: &str, receivers: usize) -> anyhow::Result<Run> {
        let sender = site.client(&format!("{label}-sender"))?;
        let clients =
            (0..receivers).map(|i| site.client(&format!("{label}-r{i}"))).collect::<anyhow::Result<Vec<_>>>()?;
        let (channel, joined) = site.group(label, &sender, &clients)?;
        Ok(Run { sender, channel, receivers: clients.into_iter().zip(joined).collect() })
    }

    /// Sends `messages` copies of `payload` back to back while every receiver counts them.
    fn measure(&self, payload: &[u8], messages: usize, mode: Mode) -> anyhow::Result<Figures> {
        let start = Instant::now();
        thread::scope(|scope| {
            let counters: Vec<_> = self
                .receivers
                .iter()
                .map(|(_, channel)| scope.spawn(move || count(channel, messages, mode).map(|()| start.elapsed())))
                .collect();
            match mode {
                Mode::Sequential => {
                    for _ in 0..messages {
                        self.channel.send(payload)?;
                    }
                }
                Mode::Batched(batch) => {
                    let batch = vec![payload.to_vec(); batch];
                    for first in (0..messages).step_by(batch.len()) {
                        self.channel.send_many(&batch[..batch.len().min(messages - first)])?;
                    }
                }
            }
            let sending = start.elapsed();
            let mut until_all = sending;
            for counter in counters {
                let done = counter.join().map_err(|_| anyhow::anyhow!("a receiver thread panicked"))??;
                until_all = until_all.max(done);
            }
            Ok(Figures { deliveries: messages * self.receivers.len(), sending, until_all })
        })
    }

    fn close(self) {
        for (client, _) in &self.receivers {
            client.close();
        }
        self.sender.close();
    }
}

/// Receives `messages` messages on `channel`.
fn count(channel: &Channel, messages: usize, mode: Mode) -> anyhow::Result<()> {
    let mut received = 0;
    while received < messages {
        let outcome = match mode {
            Mode::Sequential => match channel.recv(Some(RECV_PATIENCE))? {
                Recv::Message(_) => Ok(1),
                other => Err(format!("{other:?}")),
            },
            Mode::Batched(batch) => match channel.recv_many(batch, Some(RECV_PATIENCE))? {
                Received::Messages(got) => Ok(got.len()),
                other => Err(format!("{other:?}")),
            },
        };
        match outcome {
            Ok(got) => received += got,
            Err(other) => anyhow::bail!("receiver got {other} after {received} of {messages} messages"),
        }
    }
    Ok(())
}
