//! Competing commits: how many rounds of "two members commit the same epoch" the Delivery Service resolves per
//! second (docs/protocol.md, "Delivery-Service rules": the first commit for an epoch wins, the other is refused
//! with `stale_epoch`).
//!
//! `channels` channels race side by side. In each, two contenders, each on its own stream and, with several relays,
//! on different relays (so on a shared JetStream log the race is decided by its compare-and-set), send a commit
//! for the channel's current epoch at the same moment and wait for both answers; a round is resolved when exactly
//! one was acknowledged and the other refused with `stale_epoch`, and the next round is the next epoch. Anything
//! else ends the run with the reason. A third stream subscribed to the channel (on a relay of its own where there
//! are several) must then be delivered exactly the winners, in order. The commits are PublicMessages with the
//! clear-text framing the relay reads and opaque bytes for the rest (the relays run with `--auth none`).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use skytale_proto::{meta, ChannelName};
use tokio::sync::mpsc;

use crate::slim_stream::{self, Received, SlimStream};

/// How long the subscriber may take to deliver the last winners after the rounds ended.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// A race over `channels` channels for `duration`.
pub struct Race {
    pub label: String,
    pub channels: usize,
    pub commit_bytes: usize,
    pub duration: Duration,
}

/// Resolved rounds and the time each took (both commits sent -> both answers received).
pub struct Resolved {
    pub rounds: u64,
    pub elapsed_s: f64,
    pub round_ms: Vec<f64>,
}

pub async fn run(race: &Race, relays: &[String]) -> anyhow::Result<Resolved> {
    if race.channels == 0 || relays.is_empty() {
        bail!("a race needs a channel and a relay");
    }
    let mut tasks = Vec::new();
    for c in 0..race.channels {
        let channel = ChannelName::parse(&format!("bench/{}/channel-{c}", race.label))?;
        let pick = |k: usize| relays[(c + k) % relays.len()].clone();
        let contenders = [open(&pick(0)).await?, open(&pick(1)).await?];
        let mut subscriber = open(&pick(1)).await?;
        subscriber.subscribe(&channel, 1).await?;
        let channel_race = ChannelRace { channel, group_id: format!("bench-race-{c}").into_bytes(), contenders };
        tasks.push(tokio::spawn(channel_race.run(subscriber, race.commit_bytes, race.duration)));
    }
    let started = Instant::now();
    let (mut rounds, mut round_ms) = (0, Vec::new());
    for task in tasks {
        let times = task.await??;
        rounds += times.len() as u64;
        round_ms.extend(times);
    }
    Ok(Resolved { rounds, elapsed_s: started.elapsed().as_secs_f64(), round_ms })
}

async fn open(relay: &str) -> anyhow::Result<SlimStream> {
    SlimStream::open(slim_stream::connect(relay).await?).await
}

struct ChannelRace {
    channel: ChannelName,
    group_id: Vec<u8>,
    contenders: [SlimStream; 2],
}

impl ChannelRace {
    /// Binds the channel to its group with one application message, races rounds for `duration`, then checks
    /// what `subscriber` was delivered; returns each round's time in ms.
    async fn run(
        mut self,
        subscriber: SlimStream,
        commit_bytes: usize,
        duration: Duration,
    ) -> anyhow::Result<Vec<f64>> {
        let delivered = deliveries(subscriber, self.channel.clone());
        let first = slim_stream::private_message(&self.group_id, 0, commit_bytes, 0)?;
        let mut stored = vec![first.clone()];
        let bind = slim_stream::publish(&self.channel, first, format!("{}-bind", self.channel));
        self.contenders[0].outgoing.send(bind).await?;
        if let Received::Refused { code, reason } = self.answer(0).await? {
            bail!("{}: the first message was refused: {reason} ({code})", self.channel);
        }

        let deadline = Instant::now() + duration;
        let mut round_ms = Vec::new();
        for epoch in 0u64.. {
            if Instant::now() >= deadline {
                break;
            }
            let commit = |who: u32| {
                slim_stream::public_commit(&self.group_id, epoch, who, commit_bytes, 2 * epoch + u64::from(who) + 1)
            };
            let commits = [commit(0)?, commit(1)?];
            let started = Instant::now();
            for (who, commit) in commits.iter().enumerate() {
                let msg_id = format!("{}-{epoch}-{who}", self.channel);
                let frame = slim_stream::publish_as(&self.channel, meta::payload_type::COMMIT, commit.clone(), msg_id);
                self.contenders[who].outgoing.send(frame).await?;
            }
            let (a, b) = (self.answer(0).await?, self.answer(1).await?);
            round_ms.push(started.elapsed().as_secs_f64() * 1000.0);
            let winner = match (&a, &b) {
                (Received::Ack, Received::Refused { code, .. }) if code == meta::error_code::STALE_EPOCH => 0,
                (Received::Refused { code, .. }, Received::Ack) if code == meta::error_code::STALE_EPOCH => 1,
                _ => bail!(
                    "{}: epoch {epoch} was not resolved to one commit: {} and {}",
                    self.channel,
                    show(&a),
                    show(&b)
                ),
            };
            stored.push(commits[winner].clone());
        }
        check_delivered(&self.channel, delivered, &stored).await?;
        Ok(round_ms)
    }

    /// The next answer (ack or refusal) on contender `who`'s stream, which subscribes to nothing.
    async fn answer(&mut self, who: usize) -> anyhow::Result<Received> {
        let frame = self.contenders[who].incoming.message().await?.context("the relay closed a contender's stream")?;
        match slim_stream::classify(&frame)? {
            Received::Delivery => bail!("{}: a delivery on a stream that subscribes to nothing", self.channel),
            answer => Ok(answer),
        }
    }
}

fn show(answer: &Received) -> String {
    match answer {
        Received::Ack => "ack".to_owned(),
        Received::Refused { code, reason } => format!("{code} ({reason})"),
        Received::Delivery => "delivery".to_owned(),
    }
}

/// Reads `subscriber`'s deliveries into a queue as they come, so the relay never waits for this side.
fn deliveries(subscriber: SlimStream, channel: ChannelName) -> mpsc::UnboundedReceiver<anyhow::Result<(u64, Vec<u8>)>> {
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        // Holding `outgoing` keeps the stream open: the relay ends a stream once its client side has ended.
        let SlimStream { outgoing: _open, mut incoming } = subscriber;
        loop {
            let next = async {
                let frame = incoming.message().await?.context("the relay closed the subscriber's stream")?;
                match slim_stream::classify(&frame)? {
                    Received::Delivery => {}
                    other => bail!("{channel}: the subscriber got {} instead of a delivery", show(&other)),
                }
                let seq = frame.metadata.get(meta::SEQ).and_then(|s| s.parse().ok()).unwrap_or(0);
                let blob = slim_stream::delivered_blob(&frame).context("a delivery without a message")?;
                Ok((seq, blob.to_vec()))
            }
            .await;
            let failed = next.is_err();
            if sender.send(next).is_err() || failed {
                return;
            }
        }
    });
    receiver
}

/// The subscriber must have been delivered exactly `stored` (the first message, then each round's winner) with
/// seqs 1, 2, ...
async fn check_delivered(
    channel: &ChannelName,
    mut delivered: mpsc::UnboundedReceiver<anyhow::Result<(u64, Vec<u8>)>>,
    stored: &[Vec<u8>],
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
    for (i, expected) in stored.iter().enumerate() {
        let next = tokio::time::timeout_at(deadline, delivered.recv()).await.with_context(|| {
            format!("{channel}: {} of {} stored messages delivered within {DELIVERY_TIMEOUT:?}", i, stored.len())
        })?;
        let (seq, blob) = next.context("the subscriber's reader ended")??;
        if seq != i as u64 + 1 || blob != *expected {
            bail!("{channel}: delivery {} (seq {seq}) is not the message stored there", i + 1);
        }
    }
    Ok(())
}
