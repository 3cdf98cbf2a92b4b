//! The client's single gRPC stream to the relay (`DataPlaneService/OpenChannel`), kept alive across outages.
//!
//! A supervisor task owns the stream: it opens it, negotiates the link (learning the relay's payload limit),
//! resubscribes every routed channel from the position the channel reports, and reads frames until the stream
//! breaks; then it reconnects with exponential backoff (capped at [`MAX_BACKOFF`]). Callers never see the
//! individual links: [`Relay::publish`] waits for a link, sends, and if the link dies before the relay answers it
//! resends the same frame (same msg-id, which the relay deduplicates) on the next link, up to a deadline.
//!
//! Deliveries go to each channel's bounded queue with `send().await`, so a channel that falls behind slows the
//! stream (HTTP/2 flow control) instead of losing messages.
//!
//! With credentials (an API key), every link is opened with a freshly fetched `authorization: Bearer <JWT>`, and
//! a refresher task replaces the open link's token in-band (a `Link` frame with `skytale-authorization`, see
//! docs/protocol.md) when the token reaches two thirds of its lifetime, without dropping the stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use skytale_proto::pb;
use skytale_proto::pb::data_plane_service_client::DataPlaneServiceClient;
use skytale_proto::ChannelName;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{timeout, timeout_at, Instant};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;

use crate::credentials::Credentials;
use crate::error::{with_causes, Error};
use crate::frames::{self, Delivery, Incoming, PayloadKind, RelayRefusal, StartPoint};
use crate::tls::{self, TrustRoots};

/// How long `connect` (and each reconnect attempt) may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a publish or subscribe keeps trying across outages before failing with a transport error.
pub(crate) const SEND_DEADLINE: Duration = Duration::from_secs(30);
const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Retry pace of a failed token refresh (the old token stays valid for a third of its lifetime).
const REFRESH_RETRY: Duration = Duration::from_secs(1);
const MAX_REFRESH_RETRY: Duration = Duration::from_secs(30);
const OUTGOING_QUEUE: usize = 256;
/// Frames carry at most one MLS message of at most the relay's payload limit; leave room for a generous limit.
const MAX_FRAME: usize = 64 << 20;

/// What the transport hands to a channel.
#[derive(Debug)]
pub(crate) enum ChannelEvent {
    Delivery(Delivery),
    /// The relay refused (re)subscribing this channel, e.g. `retention_expired`.
    SubscriptionRefused(RelayRefusal),
}

/// The verdicts of [`Relay::publish_batch`], in the batch's order.
pub(crate) struct BatchOutcome {
    /// `None`: never answered (see `error`).
    pub outcomes: Vec<Option<PublishOutcome>>,
    /// Why the batch stopped before every message was answered.
    pub error: Option<Error>,
}

/// How the transport reaches a channel: its event queue, and where to resume it after a reconnect.
pub(crate) struct Route {
    pub events: mpsc::Sender<ChannelEvent>,
    pub resume_from: Box<dyn Fn() -> StartPoint + Send + Sync>,
}

/// The relay's answer to a publish.
#[derive(Debug)]
pub(crate) enum PublishOutcome {
    /// Durably appended at this sequence number.
    Stored(u64),
    Refused(RelayRefusal),
}

#[derive(Clone)]
struct Link {
    frames: mpsc::Sender<pb::Message>,
    generation: u64,
}

struct Waiter<T> {
    generation: u64,
    reply: oneshot::Sender<T>,
}

struct Subscription {
    channel: ChannelName,
    generation: u64,
    waiter: Option<oneshot::Sender<Result<Option<u64>, RelayRefusal>>>,
}

/// How the transport reaches and authenticates to the relay.
pub(crate) struct RelayAccess {
    pub endpoint: String,
    pub source: pb::Name,
    pub roots: TrustRoots,
    /// `None`: anonymous streams (a relay run with `--auth none`).
    pub credentials: Option<Arc<Credentials>>,
}

/// Shared state of the relay connection.
pub(crate) struct Relay {
    endpoint: String,
    source: pb::Name,
    roots: TrustRoots,
    credentials: Option<Arc<Credentials>>,
    link: watch::Sender<Option<Link>>,
    generation: AtomicU64,
    next_id: AtomicU64,
    max_payload: AtomicUsize,
    acks: Mutex<HashMap<String, Waiter<PublishOutcome>>>,
    /// Head queries waiting for the relay's answer, by query id.
    heads: Mutex<HashMap<String, Waiter<Result<u64, RelayRefusal>>>>,
    subscriptions: Mutex<HashMap<u64, Subscription>>,
    /// Token refreshes waiting for the relay's reply, by link id.
    refreshes: Mutex<HashMap<String, Waiter<Result<(), RelayRefusal>>>>,
    routes: RwLock<HashMap<ChannelName, Route>>,
    shutdown: watch::Sender<bool>,
}

type Inbound = tonic::Streaming<pb::Message>;

fn runtime_lock<T>(_: T) -> Error {
    Error::Runtime("transport lock poisoned".into())
}

fn status_error(status: tonic::Status) -> Error {
    match status.code() {
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => Error::Auth(status.message().to_owned()),
        _ => Error::Transport(format!("relay stream failed: {}", status.message())),
    }
}

impl Relay {
    /// Connects to the relay (failing fast if it is unreachable or refuses the credentials) and starts the
    /// supervisor task, plus the token refresher when there are credentials.
    pub async fn connect(access: RelayAccess) -> Result<Arc<Self>, Error> {
        let relay = Arc::new(Self {
            endpoint: access.endpoint,
            source: access.source,
            roots: access.roots,
            credentials: access.credentials,
            link: watch::Sender::new(None),
            generation: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            max_payload: AtomicUsize::new(skytale_proto::meta::DEFAULT_MAX_PAYLOAD),
            acks: Mutex::new(HashMap::new()),
            heads: Mutex::new(HashMap::new()),
            subscriptions: Mutex::new(HashMap::new()),
            refreshes: Mutex::new(HashMap::new()),
            routes: RwLock::new(HashMap::new()),
            shutdown: watch::Sender::new(false),
        });
        let first = relay.open_link().await?;
        tokio::spawn(relay.clone().supervise(Some(first)));
        if let Some(credentials) = relay.credentials.clone() {
            tokio::spawn(relay.clone().keep_token_fresh(credentials));
        }
        Ok(relay)
    }

    /// Largest MLS message the relay accepts, as negotiated on the current (or last) link.
    pub fn max_payload(&self) -> usize {
        self.max_payload.load(Ordering::Relaxed)
    }

    /// Stops the supervisor; pending and future calls fail with a transport error.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
        self.link.send_replace(None);
        // Dropping the routes closes every channel's event queue, which ends its inbound worker.
        if let Ok(mut routes) = self.routes.write() {
            routes.clear();
        }
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A fresh idempotency id for a publish.
    pub fn new_msg_id(&self) -> String {
        hex::encode(rand::random::<[u8; 16]>())
    }

    async fn open_link(&self) -> Result<(mpsc::Sender<pb::Message>, Inbound), Error> {
        match timeout(CONNECT_TIMEOUT, self.try_open_link()).await {
            Ok(result) => result,
            Err(_) => {
                Err(Error::Transport(format!("relay {} did not answer within {CONNECT_TIMEOUT:?}", self.endpoint)))
            }
        }
    }

    async fn try_open_link(&self) -> Result<(mpsc::Sender<pb::Message>, Inbound), Error> {
        let unreachable = |e: tonic::transport::Error| {
            Error::Transport(format!("cannot reach relay {}: {}", self.endpoint, with_causes(&e)))
        };
        let mut endpoint = Endpoint::from_shared(self.endpoint.clone())
            .map_err(|e| Error::Transport(format!("invalid relay endpoint {:?}: {e}", self.endpoint)))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(10));
        if tls::is_https(&self.endpoint) {
            endpoint = endpoint
                .tls_config(self.roots.grpc())
                .map_err(|e| Error::Transport(format!("invalid TLS settings for {}: {e}", self.endpoint)))?;
        }
        // Fetched per link: a reconnect presents a fresh token with every grant recorded so far.
        let bearer = match &self.credentials {
            Some(credentials) => Some(bearer_value(&credentials.token_for_new_stream().await?)?),
            None => None,
        };
        let channel = endpoint.connect().await.map_err(unreachable)?;
        let mut client = DataPlaneServiceClient::new(channel)
            .max_decoding_message_size(MAX_FRAME)
            .max_encoding_message_size(MAX_FRAME);
        let (frames, outgoing) = mpsc::channel(OUTGOING_QUEUE);
        let link_id = format!("{:x}", rand::random::<u64>());
        frames
            .send(frames::link_negotiation(&link_id))
            .await
            .map_err(|_| Error::Transport("link closed before negotiation".into()))?;
        let mut request = tonic::Request::new(ReceiverStream::new(outgoing));
        if let Some(bearer) = bearer {
            request.metadata_mut().insert("authorization", bearer);
        }
        let mut inbound = client.open_channel(request).await.map_err(status_error)?.into_inner();
        loop {
            match inbound.message().await.map_err(status_error)? {
                Some(frame) => match frames::classify(frame) {
                    Incoming::LinkReply { max_payload, .. } => {
                        if let Some(limit) = max_payload {
                            self.max_payload.store(limit, Ordering::Relaxed);
                        }
                        return Ok((frames, inbound));
                    }
                    other => tracing::debug!(?other, "frame before link negotiation reply ignored"),
                },
                None => return Err(Error::Transport("relay closed the stream during link negotiation".into())),
            }
        }
    }

    async fn supervise(self: Arc<Self>, mut first: Option<(mpsc::Sender<pb::Message>, Inbound)>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut backoff = INITIAL_BACKOFF;
        while !*shutdown.borrow_and_update() {
            let (frames, inbound) = match first.take() {
                Some(link) => link,
                None => match self.open_link().await {
                    Ok(link) => link,
                    Err(e) => {
                        tracing::warn!(error = %e, ?backoff, "relay reconnect failed");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = shutdown.changed() => {}
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                },
            };
            backoff = INITIAL_BACKOFF;
            let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
            let link = Link { frames, generation };
            self.link.send_replace(Some(link.clone()));
            self.resubscribe_all(&link).await;
            tokio::select! {
                reason = self.read(inbound) => tracing::warn!(%reason, "relay link lost"),
                _ = shutdown.changed() => {}
            }
            self.link.send_replace(None);
            self.forget_waiters(generation);
        }
        self.link.send_replace(None);
        self.forget_waiters(u64::MAX);
    }

    /// Drops every waiter registered on a link up to `generation`, so its caller retries on the next link.
    fn forget_waiters(&self, generation: u64) {
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

    async fn resubscribe_all(&self, link: &Link) {
        let targets: Vec<(ChannelName, StartPoint)> = match self.routes.read() {
            Ok(routes) => routes.iter().map(|(name, route)| (name.clone(), (route.resume_from)())).collect(),
            Err(_) => return,
        };
        for (channel, start) in targets {
            if let Ok(frame) = self.register_subscription(&channel, start, link.generation, None) {
                if link.frames.send(frame).await.is_err() {
                    return;
                }
            }
        }
    }

    fn register_subscription(
        &self,
        channel: &ChannelName,
        start: StartPoint,
        generation: u64,
        waiter: Option<oneshot::Sender<Result<Option<u64>, RelayRefusal>>>,
    ) -> Result<pb::Message, Error> {
        let id = self.next_id();
        self.subscriptions
            .lock()
            .map_err(runtime_lock)?
            .insert(id, Subscription { channel: channel.clone(), generation, waiter });
        Ok(frames::subscribe(&self.source, channel, id, start))
    }

    async fn read(&self, mut inbound: Inbound) -> String {
        loop {
            match inbound.message().await {
                Ok(Some(frame)) => self.dispatch(frames::classify(frame)).await,
                Ok(None) => return "relay closed the stream".into(),
                Err(status) => return status.to_string(),
            }
        }
    }

    async fn dispatch(&self, incoming: Incoming) {
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

    async fn route(&self, channel: &ChannelName, event: ChannelEvent) {
        let events = self.routes.read().ok().and_then(|routes| routes.get(channel).map(|r| r.events.clone()));
        match events {
            // A closed queue means the channel was just left or removed; nothing more to deliver.
            Some(events) => {
                let _ = events.send(event).await;
            }
            None => tracing::debug!(%channel, "delivery for a channel this client does not hold"),
        }
    }

    /// Waits until a link is up (or the deadline passes / the client closes).
    async fn wait_for_link(&self, deadline: Instant) -> Result<Link, Error> {
        let mut link = self.link.subscribe();
        loop {
            if *self.shutdown.borrow() {
                return Err(Error::Transport("client is closed".into()));
            }
            if let Some(current) = link.borrow_and_update().clone() {
                return Ok(current);
            }
            if timeout_at(deadline, link.changed()).await.is_err() {
                return Err(Error::Transport(format!("relay {} unreachable for {SEND_DEADLINE:?}", self.endpoint)));
            }
        }
    }

    fn link_is(&self, generation: u64) -> bool {
        self.link.borrow().as_ref().is_some_and(|l| l.generation == generation)
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

    async fn await_link_change(&self, generation: u64, deadline: Instant) -> Result<(), Error> {
        let mut link = self.link.subscribe();
        while link.borrow_and_update().as_ref().is_some_and(|l| l.generation == generation) {
            if timeout_at(deadline, link.changed()).await.is_err() {
                return Err(Error::Transport(format!("relay {} unreachable for {SEND_DEADLINE:?}", self.endpoint)));
            }
        }
        Ok(())
    }

    /// Routes `channel` to `route` and subscribes it from `start`; after a reconnect the supervisor resubscribes
    /// it from `route.resume_from`. With `wait_for_ack`, waits for the relay's acknowledgement and returns the
    /// channel's current epoch at the relay; without, a refusal arrives on the route as an event.
    pub async fn subscribe(
        &self,
        channel: &ChannelName,
        start: StartPoint,
        route: Route,
        wait_for_ack: bool,
    ) -> Result<Option<u64>, Error> {
        self.routes.write().map_err(runtime_lock)?.insert(channel.clone(), route);
        let deadline = Instant::now() + SEND_DEADLINE;
        loop {
            let link = if wait_for_ack {
                self.wait_for_link(deadline).await?
            } else {
                // Not connected right now: the supervisor subscribes every route when the link comes back.
                match self.link.borrow().clone() {
                    Some(link) => link,
                    None => return Ok(None),
                }
            };
            let (reply, answer) = oneshot::channel();
            let frame = self.register_subscription(channel, start, link.generation, wait_for_ack.then_some(reply))?;
            if !self.link_is(link.generation) || link.frames.send(frame).await.is_err() {
                self.await_link_change(link.generation, deadline).await?;
                continue;
            }
            if !wait_for_ack {
                return Ok(None);
            }
            match timeout_at(deadline, answer).await {
                Ok(Ok(Ok(epoch))) => return Ok(epoch),
                Ok(Ok(Err(refusal))) => {
                    self.unroute(channel);
                    return Err(refusal_error(&refusal));
                }
                Ok(Err(_link_lost)) => continue,
                Err(_) => {
                    return Err(Error::Transport(format!(
                        "relay did not acknowledge the subscription within {SEND_DEADLINE:?}"
                    )))
                }
            }
        }
    }

    /// Replaces the open stream's token with a fresh one (carrying every grant recorded so far) and waits for
    /// the relay to accept it. Without credentials there is nothing to refresh. If the link drops meanwhile, the
    /// next link is opened with a fresh token anyway, and the refresh is repeated on it.
    pub async fn refresh_token(&self) -> Result<(), Error> {
        let Some(credentials) = &self.credentials else { return Ok(()) };
        let jwt = credentials.fresh_token().await?;
        let deadline = Instant::now() + SEND_DEADLINE;
        loop {
            let link = self.wait_for_link(deadline).await?;
            let link_id = format!("refresh-{:x}", rand::random::<u64>());
            let (reply, answer) = oneshot::channel();
            self.refreshes
                .lock()
                .map_err(runtime_lock)?
                .insert(link_id.clone(), Waiter { generation: link.generation, reply });
            if !self.link_is(link.generation) || link.frames.send(frames::token_refresh(&link_id, &jwt)).await.is_err()
            {
                self.refreshes.lock().map_err(runtime_lock)?.remove(&link_id);
                self.await_link_change(link.generation, deadline).await?;
                continue;
            }
            match timeout_at(deadline, answer).await {
                Ok(Ok(Ok(()))) => return Ok(()),
                Ok(Ok(Err(refusal))) => {
                    return Err(Error::Auth(format!(
                        "relay refused the refreshed token ({}): {}",
                        refusal.code, refusal.message
                    )))
                }
                Ok(Err(_link_lost)) => continue,
                Err(_) => {
                    self.refreshes.lock().map_err(runtime_lock)?.remove(&link_id);
                    return Err(Error::Transport(format!(
                        "relay did not answer the token refresh within {SEND_DEADLINE:?}"
                    )));
                }
            }
        }
    }

    /// Refreshes the stream's token whenever the last fetched one reaches its refresh time; a failed refresh is
    /// logged and retried with backoff (the current token stays valid for another third of its lifetime).
    async fn keep_token_fresh(self: Arc<Self>, credentials: Arc<Credentials>) {
        let mut due = credentials.refresh_due();
        let mut shutdown = self.shutdown.subscribe();
        let mut retry = REFRESH_RETRY;
        let mut retry_at: Option<Instant> = None;
        while !*shutdown.borrow_and_update() {
            let wake = retry_at.or(*due.borrow_and_update());
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sleep => {}
                // A token was fetched elsewhere (reconnect, explicit refresh): recompute.
                Ok(()) = due.changed() => {
                    retry_at = None;
                    continue;
                }
                _ = shutdown.changed() => continue,
            }
            match self.refresh_token().await {
                Ok(()) => {
                    retry = REFRESH_RETRY;
                    retry_at = None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?retry, "token refresh failed; retrying");
                    retry_at = Some(Instant::now() + retry);
                    retry = (retry * 2).min(MAX_REFRESH_RETRY);
                }
            }
        }
    }

    fn unroute(&self, channel: &ChannelName) {
        if let Ok(mut routes) = self.routes.write() {
            routes.remove(channel);
        }
        if let Ok(mut subs) = self.subscriptions.lock() {
            subs.retain(|_, s| s.channel != *channel);
        }
    }

    /// Stops deliveries of `channel` (best effort on the wire; locally at once).
    pub async fn unsubscribe(&self, channel: &ChannelName) {
        self.unroute(channel);
        let link = self.link.borrow().clone();
        if let Some(link) = link {
            let _ = link.frames.send(frames::unsubscribe(&self.source, channel, self.next_id())).await;
        }
    }
}

fn bearer_value(jwt: &str) -> Result<tonic::metadata::MetadataValue<tonic::metadata::Ascii>, Error> {
    format!("Bearer {jwt}")
        .parse()
        .map_err(|_| Error::Auth("the API issued a token that is not a valid header value".into()))
}

/// Maps a relay refusal that the client does not handle itself to the public error.
pub(crate) fn refusal_error(refusal: &RelayRefusal) -> Error {
    use skytale_proto::meta::error_code;
    let text = format!("relay refused ({}): {}", refusal.code, refusal.message);
    match refusal.code.as_str() {
        error_code::UNAUTHORIZED => Error::Auth(text),
        error_code::STORAGE => Error::Transport(text),
        c if c.starts_with("quota") => Error::Quota(text),
        _ => Error::Channel(text),
    }
}
