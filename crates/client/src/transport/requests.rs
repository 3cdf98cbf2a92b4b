//! Requests the relay answers on the stream (publishes, head queries, token refreshes; subscriptions follow the
//! same pattern in `routes`), each matched to its answer by id and sent again on the next link when its link
//! dies before the answer.

use std::sync::atomic::Ordering;

use skytale_proto::pb;
use skytale_proto::ChannelName;
use tokio::sync::oneshot;
use tokio::time::{timeout_at, Instant};

use super::routes::ChannelEvent;
use super::{refusal_error, runtime_lock, Relay, SEND_DEADLINE};
use crate::error::Error;
use crate::frames::{self, Incoming, PayloadKind, RelayRefusal, StartPoint};

/// The relay's answer to a publish.
#[derive(Debug)]
pub(crate) enum PublishOutcome {
    /// Durably appended at this sequence number.
    Stored(u64),
    Refused(RelayRefusal),
}

/// The verdicts of [`Relay::publish_batch`], in the batch's order.
pub(crate) struct BatchOutcome {
    /// `None`: never answered (see `error`).
    pub outcomes: Vec<Option<PublishOutcome>>,
    /// Why the batch stopped before every message was answered.
    pub error: Option<Error>,
}

pub(super) struct Waiter<T> {
    pub generation: u64,
    pub reply: oneshot::Sender<T>,
}

impl Relay {
    /// Publishes one MLS message and waits for the relay's verdict, resending across outages until
    /// [`SEND_DEADLINE`].
    pub async fn publish(
        &self,
        channel: &ChannelName,
        kind: PayloadKind,
        blob: Vec<u8>,
        msg_id: &str,
    ) -> Result<PublishOutcome, Error> {
        let deadline = Instant::now() + SEND_DEADLINE;
        let frame = frames::publish(&self.source, channel, kind, blob, msg_id);
        loop {
            let link = self.wait_for_link(deadline).await?;
            let (reply, answer) = oneshot::channel();
            self.acks
                .lock()
                .map_err(runtime_lock)?
                .insert(msg_id.to_owned(), Waiter { generation: link.generation, reply });
            // If the link was replaced while registering, the supervisor may already have swept the waiters.
            if !self.link_is(link.generation) || link.frames.send(frame.clone()).await.is_err() {
                self.acks.lock().map_err(runtime_lock)?.remove(msg_id);
                self.await_link_change(link.generation, deadline).await?;
                continue;
            }
            match timeout_at(deadline, answer).await {
                Ok(Ok(outcome)) => return Ok(outcome),
                Ok(Err(_link_lost)) => continue,
                Err(_) => {
                    self.acks.lock().map_err(runtime_lock)?.remove(msg_id);
                    return Err(Error::Transport(format!("no answer from relay within {SEND_DEADLINE:?}")));
                }
            }
        }
    }

    /// Publishes `messages` (msg-id, MLS blob) back to back without waiting for each verdict, then collects the
    /// verdicts. After a lost link the unanswered ones are resent, in order and with their msg-ids (the relay
    /// deduplicates), on the next link, until [`SEND_DEADLINE`]. The outcomes come back in the batch's order;
    /// on a transport failure the ones never answered are `None`.
    pub async fn publish_batch(
        &self,
        channel: &ChannelName,
        kind: PayloadKind,
        messages: Vec<(String, Vec<u8>)>,
    ) -> BatchOutcome {
        let deadline = Instant::now() + SEND_DEADLINE;
        let frames: Vec<(String, pb::Message)> = messages
            .into_iter()
            .map(|(msg_id, blob)| {
                let frame = frames::publish(&self.source, channel, kind, blob, &msg_id);
                (msg_id, frame)
            })
            .collect();
        let mut outcomes: Vec<Option<PublishOutcome>> = frames.iter().map(|_| None).collect();
        loop {
            let unanswered: Vec<usize> = (0..frames.len()).filter(|&i| outcomes[i].is_none()).collect();
            if unanswered.is_empty() {
                return BatchOutcome { outcomes, error: None };
            }
            let link = match self.wait_for_link(deadline).await {
                Ok(link) => link,
                Err(e) => return BatchOutcome { outcomes, error: Some(e) },
            };
            let mut answers = Vec::with_capacity(unanswered.len());
            match self.acks.lock() {
                Ok(mut acks) => {
                    for &i in &unanswered {
                        let (reply, answer) = oneshot::channel();
                        acks.insert(frames[i].0.clone(), Waiter { generation: link.generation, reply });
                        answers.push((i, answer));
                    }
                }
                Err(poisoned) => return BatchOutcome { outcomes, error: Some(runtime_lock(poisoned)) },
            }
            let mut sent = self.link_is(link.generation);
            for &(i, _) in &answers {
                if !sent {
                    break;
                }
                sent = link.frames.send(frames[i].1.clone()).await.is_ok();
            }
            if !sent {
                self.forget_acks(answers.iter().map(|&(i, _)| frames[i].0.as_str()));
                if let Err(e) = self.await_link_change(link.generation, deadline).await {
                    return BatchOutcome { outcomes, error: Some(e) };
                }
                continue;
            }
            let mut link_lost = false;
            for (position, (i, mut answer)) in answers.into_iter().enumerate() {
                if link_lost {
                    // Answers are in publish order, so nothing after a lost one came; take any that did.
                    outcomes[i] = answer.try_recv().ok();
                    continue;
                }
                match timeout_at(deadline, &mut answer).await {
                    Ok(Ok(outcome)) => outcomes[i] = Some(outcome),
                    Ok(Err(_)) => link_lost = true,
                    Err(_) => {
                        let left = unanswered[position..].iter().map(|&j| frames[j].0.as_str());
                        self.forget_acks(left);
                        let error = Error::Transport(format!("no answer from relay within {SEND_DEADLINE:?}"));
                        return BatchOutcome { outcomes, error: Some(error) };
                    }
                }
            }
        }
    }

    fn forget_acks<'a>(&self, msg_ids: impl Iterator<Item = &'a str>) {
        if let Ok(mut acks) = self.acks.lock() {
            for msg_id in msg_ids {
                acks.remove(msg_id);
            }
        }
    }

    /// Asks the relay for `channel`'s head: its highest stored sequence number (0: none), covering every
    /// publish it acknowledged before answering; from `start`, counting only what a subscription from there
    /// delivers. Read-only, so after a lost link it is simply asked again on the next one, until [`SEND_DEADLINE`].
    pub async fn head(&self, channel: &ChannelName, start: StartPoint) -> Result<u64, Error> {
        // From a seq, every stored message up to the head is delivered (or already applied): no filter needed.
        let from_epoch = match start {
            StartPoint::Epoch(epoch) => Some(epoch),
            StartPoint::Seq(_) => None,
        };
        let deadline = Instant::now() + SEND_DEADLINE;
        loop {
            let link = self.wait_for_link(deadline).await?;
            let query_id = self.new_msg_id();
            let (reply, answer) = oneshot::channel();
            self.heads
                .lock()
                .map_err(runtime_lock)?
                .insert(query_id.clone(), Waiter { generation: link.generation, reply });
            if !self.link_is(link.generation)
                || link.frames.send(frames::head_query(&self.source, channel, &query_id, from_epoch)).await.is_err()
            {
                self.heads.lock().map_err(runtime_lock)?.remove(&query_id);
                self.await_link_change(link.generation, deadline).await?;
                continue;
            }
            match timeout_at(deadline, answer).await {
                Ok(Ok(Ok(head))) => return Ok(head),
                Ok(Ok(Err(refusal))) => return Err(refusal_error(&refusal)),
                Ok(Err(_link_lost)) => continue,
                Err(_) => {
                    self.heads.lock().map_err(runtime_lock)?.remove(&query_id);
                    return Err(Error::Transport(format!(
                        "relay did not answer the head query within {SEND_DEADLINE:?}"
                    )));
                }
            }
        }
    }

    pub(super) async fn dispatch(&self, incoming: Incoming) {
        match incoming {
            Incoming::PublishAck { msg_id, seq } => self.answer_publish(&msg_id, PublishOutcome::Stored(seq)),
            Incoming::HeadReply { query_id, head } => {
                if let Some(waiter) = self.take_head_waiter(&query_id) {
                    let _ = waiter.reply.send(Ok(head));
                }
            }
            // Head queries and publishes share the id space of `skytale-msg-id` (both random), so a refusal
            // answers whichever of them is waiting on that id.
            Incoming::PublishRefused { msg_id, refusal } => match self.take_head_waiter(&msg_id) {
                Some(waiter) => {
                    let _ = waiter.reply.send(Err(refusal));
                }
                None => self.answer_publish(&msg_id, PublishOutcome::Refused(refusal)),
            },
            Incoming::SubscriptionAck { id, result } => {
                // A successful subscription stays registered: the relay may still end it later with a refusal
                // (e.g. `retention_expired` when retention overtakes a lagging cursor).
                let entry = self.subscriptions.lock().ok().and_then(|mut subs| {
                    let sub = subs.get_mut(&id)?;
                    let answered = (sub.channel.clone(), sub.waiter.take());
                    if result.is_err() {
                        subs.remove(&id);
                    }
                    Some(answered)
                });
                let Some((channel, waiter)) = entry else { return };
                match (waiter, result) {
                    (Some(waiter), result) => {
                        let _ = waiter.send(result);
                    }
                    (None, Err(refusal)) => self.route(&channel, ChannelEvent::SubscriptionRefused(refusal)).await,
                    (None, Ok(_)) => {}
                }
            }
            Incoming::Delivery(delivery) => {
                let channel = delivery.channel.clone();
                self.route(&channel, ChannelEvent::Delivery(delivery)).await;
            }
            Incoming::LinkReply { link_id, max_payload, refusal } => {
                if let Some(limit) = max_payload {
                    self.max_payload.store(limit, Ordering::Relaxed);
                }
                let waiter = self.refreshes.lock().ok().and_then(|mut refreshes| refreshes.remove(&link_id));
                if let Some(waiter) = waiter {
                    let _ = waiter.reply.send(refusal.map_or(Ok(()), Err));
                }
            }
            Incoming::Ignored(why) => tracing::debug!(why, "frame ignored"),
        }
    }

    fn answer_publish(&self, msg_id: &str, outcome: PublishOutcome) {
        let waiter = self.acks.lock().ok().and_then(|mut acks| acks.remove(msg_id));
        if let Some(waiter) = waiter {
            let _ = waiter.reply.send(outcome);
        }
    }

    /// The head query waiting on `query_id`, if any (it is answered once).
    fn take_head_waiter(&self, query_id: &str) -> Option<Waiter<Result<u64, RelayRefusal>>> {
        self.heads.lock().ok().and_then(|mut heads| heads.remove(query_id))
    }

    /// Drops every waiter registered on a link up to `generation`, so its caller retries on the next link.
    pub(super) fn forget_waiters(&self, generation: u64) {
        if let Ok(mut acks) = self.acks.lock() {
            acks.retain(|_, w| w.generation > generation);
        }
        if let Ok(mut heads) = self.heads.lock() {
            heads.retain(|_, w| w.generation > generation);
        }
        if let Ok(mut subs) = self.subscriptions.lock() {
            subs.retain(|_, s| s.generation > generation);
        }
        if let Ok(mut refreshes) = self.refreshes.lock() {
            refreshes.retain(|_, w| w.generation > generation);
        }
    }
}
