//! Requests the relay answers on the stream (publishes, head queries, token refreshes; subscriptions follow the
//! same pattern in `routes`), each matched to its answer by id and sent again on the next link when its link
//! dies before the answer, a bounded number of times. A publish larger than the payload limit of the link it
//! would go on is refused without being sent.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use skytale_proto::meta::error_code;
use skytale_proto::pb;
use skytale_proto::ChannelName;
use tokio::sync::oneshot;
use tokio::time::{timeout_at, Instant};

use super::link::Link;
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

/// How many links may end while one request waits for its answer before it is given up. A relay restart ends
/// one; a frame that the relay (or something on the way) cannot take ends every link it is sent on, and without
/// a bound it would be sent again on each new link as fast as links open, until the deadline.
const MAX_LINKS_LOST: usize = 4;

fn links_lost_error() -> Error {
    Error::Transport(format!(
        "the stream to the relay ended {MAX_LINKS_LOST} times while this request waited for its answer; it is not \
         sent again (the client's log says why each stream ended)"
    ))
}

/// The answer to a publish too large for the link it would go on: sending it would only make the relay refuse
/// it or, past its frame limit, end the stream.
fn too_large_for_link(blob_len: usize, max_payload: usize) -> PublishOutcome {
    PublishOutcome::Refused(RelayRefusal {
        code: error_code::PAYLOAD_TOO_LARGE.to_owned(),
        message: format!(
            "an MLS message of {blob_len} bytes is over the relay's limit of {max_payload} bytes, so it was not sent"
        ),
    })
}

struct Waiter<T> {
    generation: u64,
    reply: oneshot::Sender<T>,
}

/// Requests of one kind waiting for the relay's answer, by the id the answer carries. A waiter belongs to the
/// link it was sent on: when that link ends, dropping the waiter tells its caller to send again.
pub(super) struct Waiters<T>(Mutex<HashMap<String, Waiter<T>>>);

impl<T> Default for Waiters<T> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<T> Waiters<T> {
    pub(super) fn register(&self, id: String, generation: u64, reply: oneshot::Sender<T>) -> Result<(), Error> {
        self.0.lock().map_err(runtime_lock)?.insert(id, Waiter { generation, reply });
        Ok(())
    }

    /// Registers one waiter per id under one lock (a batch of publishes); the receivers come in `ids`' order.
    fn register_all(
        &self,
        generation: u64,
        ids: impl Iterator<Item = String>,
    ) -> Result<Vec<oneshot::Receiver<T>>, Error> {
        let mut waiters = self.0.lock().map_err(runtime_lock)?;
        Ok(ids
            .map(|id| {
                let (reply, answer) = oneshot::channel();
                waiters.insert(id, Waiter { generation, reply });
                answer
            })
            .collect())
    }

    fn forget(&self, id: &str) -> Result<(), Error> {
        self.0.lock().map_err(runtime_lock)?.remove(id);
        Ok(())
    }

    fn forget_all<'a>(&self, ids: impl Iterator<Item = &'a str>) {
        if let Ok(mut waiters) = self.0.lock() {
            for id in ids {
                waiters.remove(id);
            }
        }
    }

    /// Drops every waiter registered on a link up to `generation`.
    fn forget_links_up_to(&self, generation: u64) {
        if let Ok(mut waiters) = self.0.lock() {
            waiters.retain(|_, w| w.generation > generation);
        }
    }

    /// The waiter for `id`, if any (an answer is delivered once).
    fn take(&self, id: &str) -> Option<oneshot::Sender<T>> {
        self.0.lock().ok().and_then(|mut waiters| waiters.remove(id)).map(|waiter| waiter.reply)
    }

    fn answer(&self, id: &str, answer: T) {
        if let Some(reply) = self.take(id) {
            let _ = reply.send(answer);
        }
    }
}

/// One kind of request, as [`Relay::exchange`] sends it: each attempt registers a waiter and yields its frame.
pub(super) trait Request {
    type Answer;

    /// Registers `reply` as the waiter for this attempt's answer on link `generation`; returns the frame to send.
    fn register(&mut self, generation: u64, reply: oneshot::Sender<Self::Answer>) -> Result<pb::Message, Error>;

    /// Forgets this attempt's waiter: its frame was not sent, or no answer came in time.
    fn forget(&self) -> Result<(), Error>;

    /// The answer to give instead of sending, when a link whose payload limit is `max_payload` cannot take the
    /// frame. `None`: send it.
    fn refused_on_link(&self, _max_payload: usize) -> Option<Self::Answer> {
        None
    }
}

/// A request answered under a fresh string id per attempt (a head query's id, a token refresh's link id):
/// `attempt` yields each attempt's id and frame.
pub(super) struct ById<'a, T, F> {
    waiters: &'a Waiters<T>,
    attempt: F,
    id: String,
}

impl<'a, T, F: FnMut() -> (String, pb::Message)> ById<'a, T, F> {
    pub fn new(waiters: &'a Waiters<T>, attempt: F) -> Self {
        Self { waiters, attempt, id: String::new() }
    }
}

impl<T, F: FnMut() -> (String, pb::Message)> Request for ById<'_, T, F> {
    type Answer = T;

    fn register(&mut self, generation: u64, reply: oneshot::Sender<T>) -> Result<pb::Message, Error> {
        let (id, frame) = (self.attempt)();
        self.waiters.register(id.clone(), generation, reply)?;
        self.id = id;
        Ok(frame)
    }

    fn forget(&self) -> Result<(), Error> {
        self.waiters.forget(&self.id)
    }
}

/// A publish: the same msg-id and frame on every link, unless the link's payload limit cannot take it.
struct PublishRequest<'a> {
    acks: &'a Waiters<PublishOutcome>,
    msg_id: &'a str,
    frame: pb::Message,
    blob_len: usize,
}

impl Request for PublishRequest<'_> {
    type Answer = PublishOutcome;

    fn register(&mut self, generation: u64, reply: oneshot::Sender<PublishOutcome>) -> Result<pb::Message, Error> {
        self.acks.register(self.msg_id.to_owned(), generation, reply)?;
        Ok(self.frame.clone())
    }

    fn forget(&self) -> Result<(), Error> {
        self.acks.forget(self.msg_id)
    }

    fn refused_on_link(&self, max_payload: usize) -> Option<PublishOutcome> {
        (self.blob_len > max_payload).then(|| too_large_for_link(self.blob_len, max_payload))
    }
}

impl Relay {
    /// Sends `request` and waits for its answer: on the current link, register a waiter and send the frame; if
    /// the link was replaced meanwhile or dies before the answer, again on the next link, until `deadline` or
    /// until [`MAX_LINKS_LOST`] links died with it. `None`: no answer by the deadline.
    pub(super) async fn exchange<R: Request>(
        &self,
        request: &mut R,
        deadline: Instant,
    ) -> Result<Option<R::Answer>, Error> {
        let mut links_lost = 0;
        loop {
            let link = self.wait_for_link(deadline).await?;
            // Checked on every link: a relay that restarted may take less than the one the caller checked against.
            if let Some(refusal) = request.refused_on_link(self.max_payload()) {
                return Ok(Some(refusal));
            }
            let Some(answer) = self.send_on(&link, request, deadline).await? else { continue };
            match timeout_at(deadline, answer).await {
                Ok(Ok(answer)) => return Ok(Some(answer)),
                Ok(Err(_link_lost)) => {
                    links_lost += 1;
                    if links_lost == MAX_LINKS_LOST {
                        return Err(links_lost_error());
                    }
                }
                Err(_) => {
                    request.forget()?;
                    return Ok(None);
                }
            }
        }
    }

    /// One attempt of `request` on `link`: registers its waiter and sends its frame. `None`: the link was replaced
    /// or closed first; the waiter is forgotten and the link has changed (or the deadline error is returned).
    pub(super) async fn send_on<R: Request>(
        &self,
        link: &Link,
        request: &mut R,
        deadline: Instant,
    ) -> Result<Option<oneshot::Receiver<R::Answer>>, Error> {
        let (reply, answer) = oneshot::channel();
        let frame = request.register(link.generation, reply)?;
        // If the link was replaced while registering, the supervisor may already have swept the waiters.
        if !self.link_is(link.generation) || link.frames.send(frame).await.is_err() {
            request.forget()?;
            self.await_link_change(link.generation, deadline).await?;
            return Ok(None);
        }
        Ok(Some(answer))
    }

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
        let blob_len = blob.len();
        let frame = frames::publish(&self.source, channel, kind, blob, msg_id);
        let mut publish = PublishRequest { acks: &self.acks, msg_id, frame, blob_len };
        match self.exchange(&mut publish, deadline).await? {
            Some(outcome) => Ok(outcome),
            None => Err(Error::Transport(format!("no answer from relay within {SEND_DEADLINE:?}"))),
        }
    }

    /// Publishes `messages` (msg-id, MLS blob) back to back without waiting for each verdict, then collects the
    /// verdicts. After a lost link the unanswered ones are resent, in order and with their msg-ids (the relay
    /// deduplicates), on the next link, until [`SEND_DEADLINE`] or [`MAX_LINKS_LOST`] lost links. A message too
    /// large for the link is refused without being sent, and the batch ends there: the ones after it are never
    /// sent (`None`). The outcomes come back in the batch's order; on a transport failure the ones never
    /// answered are `None`.
    pub async fn publish_batch(
        &self,
        channel: &ChannelName,
        kind: PayloadKind,
        messages: Vec<(String, Vec<u8>)>,
    ) -> BatchOutcome {
        let deadline = Instant::now() + SEND_DEADLINE;
        let frames: Vec<(String, pb::Message, usize)> = messages
            .into_iter()
            .map(|(msg_id, blob)| {
                let blob_len = blob.len();
                let frame = frames::publish(&self.source, channel, kind, blob, &msg_id);
                (msg_id, frame, blob_len)
            })
            .collect();
        let mut outcomes: Vec<Option<PublishOutcome>> = frames.iter().map(|_| None).collect();
        // Where the batch ends: before the first message refused for its size.
        let mut end = frames.len();
        let mut links_lost = 0;
        loop {
            let unanswered: Vec<usize> = (0..end).filter(|&i| outcomes[i].is_none()).collect();
            if unanswered.is_empty() {
                return BatchOutcome { outcomes, error: None };
            }
            let link = match self.wait_for_link(deadline).await {
                Ok(link) => link,
                Err(e) => return BatchOutcome { outcomes, error: Some(e) },
            };
            // Checked on every link, as for a single publish.
            let max_payload = self.max_payload();
            if let Some(&i) = unanswered.iter().find(|&&i| frames[i].2 > max_payload) {
                outcomes[i] = Some(too_large_for_link(frames[i].2, max_payload));
                end = i;
                continue;
            }
            let answers: Vec<(usize, oneshot::Receiver<PublishOutcome>)> =
                match self.acks.register_all(link.generation, unanswered.iter().map(|&i| frames[i].0.clone())) {
                    Ok(answers) => unanswered.iter().copied().zip(answers).collect(),
                    Err(e) => return BatchOutcome { outcomes, error: Some(e) },
                };
            let mut sent = self.link_is(link.generation);
            for &(i, _) in &answers {
                if !sent {
                    break;
                }
                sent = link.frames.send(frames[i].1.clone()).await.is_ok();
            }
            if !sent {
                self.acks.forget_all(answers.iter().map(|&(i, _)| frames[i].0.as_str()));
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
                        self.acks.forget_all(left);
                        let error = Error::Transport(format!("no answer from relay within {SEND_DEADLINE:?}"));
                        return BatchOutcome { outcomes, error: Some(error) };
                    }
                }
            }
            if link_lost {
                links_lost += 1;
                if links_lost == MAX_LINKS_LOST {
                    return BatchOutcome { outcomes, error: Some(links_lost_error()) };
                }
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
        let mut query = ById::new(&self.heads, || {
            let query_id = self.new_msg_id();
            let frame = frames::head_query(&self.source, channel, &query_id, from_epoch);
            (query_id, frame)
        });
        match self.exchange(&mut query, deadline).await? {
            Some(Ok(head)) => Ok(head),
            Some(Err(refusal)) => Err(refusal_error(&refusal)),
            None => Err(Error::Transport(format!("relay did not answer the head query within {SEND_DEADLINE:?}"))),
        }
    }

    /// Hands an incoming frame to whoever waits for it.
    pub(super) async fn dispatch(&self, incoming: Incoming) {
        match incoming {
            Incoming::PublishAck { msg_id, seq } => self.acks.answer(&msg_id, PublishOutcome::Stored(seq)),
            Incoming::HeadReply { query_id, head } => self.heads.answer(&query_id, Ok(head)),
            // Head queries and publishes share the id space of `skytale-msg-id` (both random), so a refusal
            // answers whichever of them is waiting on that id.
            Incoming::PublishRefused { msg_id, refusal } => match self.heads.take(&msg_id) {
                Some(reply) => {
                    let _ = reply.send(Err(refusal));
                }
                None => self.acks.answer(&msg_id, PublishOutcome::Refused(refusal)),
            },
            Incoming::SubscriptionAck { id, result } => self.answer_subscription(id, result).await,
            Incoming::Delivery(delivery) => {
                let channel = delivery.channel.clone();
                self.route(&channel, ChannelEvent::Delivery(delivery)).await;
            }
            Incoming::LinkReply { link_id, max_payload, refusal } => {
                if let Some(limit) = max_payload {
                    self.max_payload.store(limit, Ordering::Relaxed);
                }
                self.refreshes.answer(&link_id, refusal.map_or(Ok(()), Err));
            }
            Incoming::Ignored(why) => tracing::debug!(why, "frame ignored"),
        }
    }

    /// Drops every waiter registered on a link up to `generation`, so its caller retries on the next link.
    pub(super) fn forget_waiters(&self, generation: u64) {
        self.acks.forget_links_up_to(generation);
        self.heads.forget_links_up_to(generation);
        self.forget_subscriptions(generation);
        self.refreshes.forget_links_up_to(generation);
    }
}
