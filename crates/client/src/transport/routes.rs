//! Routes: where each channel's deliveries and subscription refusals go, and the subscriptions that feed them,
//! renewed on every new link from the position the channel reports.

use skytale_proto::pb;
use skytale_proto::ChannelName;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::link::Link;
use super::requests::Request;
use super::{refusal_error, runtime_lock, Relay, SEND_DEADLINE};
use crate::error::Error;
use crate::frames::{self, Delivery, RelayRefusal, StartPoint};

/// What the transport hands to a channel.
#[derive(Debug)]
pub(crate) enum ChannelEvent {
    Delivery(Delivery),
    /// The relay refused (re)subscribing this channel, e.g. `retention_expired`.
    SubscriptionRefused(RelayRefusal),
}

/// How the transport reaches a channel: its event queue, and where to resume it after a reconnect.
pub(crate) struct Route {
    pub events: mpsc::Sender<ChannelEvent>,
    pub resume_from: Box<dyn Fn() -> StartPoint + Send + Sync>,
}

/// The relay's answer to a subscription: the channel's current epoch at the relay, or a refusal.
type SubscriptionAnswer = Result<Option<u64>, RelayRefusal>;

/// A subscription sent on link `generation`, by subscription id.
pub(super) struct Subscription {
    channel: ChannelName,
    generation: u64,
    waiter: Option<oneshot::Sender<SubscriptionAnswer>>,
}

/// A subscription as [`Relay::exchange`] sends it: a fresh subscription id per attempt.
struct Subscribe<'a> {
    relay: &'a Relay,
    channel: &'a ChannelName,
    start: StartPoint,
    wait_for_ack: bool,
}

impl Request for Subscribe<'_> {
    type Answer = SubscriptionAnswer;

    fn register(&mut self, generation: u64, reply: oneshot::Sender<SubscriptionAnswer>) -> Result<pb::Message, Error> {
        let waiter = self.wait_for_ack.then_some(reply);
        self.relay.register_subscription(self.channel, self.start, generation, waiter)
    }

    /// Nothing to forget: the subscription stays registered until the supervisor drops it with its link, and an
    /// answer that comes after all is handled like any other.
    fn forget(&self) -> Result<(), Error> {
        Ok(())
    }
}

impl Relay {
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
        let mut subscribe = Subscribe { relay: self, channel, start, wait_for_ack };
        if !wait_for_ack {
            // Sent on the current link without waiting for the answer; again on the next one if that link dies
            // while sending.
            loop {
                let current = self.link.borrow().clone();
                // Not connected right now: the supervisor subscribes every route when the link comes back.
                let Some(link) = current else { return Ok(None) };
                if self.send_on(&link, &mut subscribe, deadline).await?.is_some() {
                    return Ok(None);
                }
            }
        }
        match self.exchange(&mut subscribe, deadline).await? {
            Some(Ok(epoch)) => Ok(epoch),
            Some(Err(refusal)) => {
                self.unroute(channel);
                Err(refusal_error(&refusal))
            }
            None => {
                Err(Error::Transport(format!("relay did not acknowledge the subscription within {SEND_DEADLINE:?}")))
            }
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

    fn unroute(&self, channel: &ChannelName) {
        if let Ok(mut routes) = self.routes.write() {
            routes.remove(channel);
        }
        if let Ok(mut subs) = self.subscriptions.lock() {
            subs.retain(|_, s| s.channel != *channel);
        }
    }

    /// Subscribes every routed channel on a new link, from where each channel says it stands.
    pub(super) async fn resubscribe_all(&self, link: &Link) {
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

    pub(super) fn register_subscription(
        &self,
        channel: &ChannelName,
        start: StartPoint,
        generation: u64,
        waiter: Option<oneshot::Sender<SubscriptionAnswer>>,
    ) -> Result<pb::Message, Error> {
        let id = self.next_id();
        self.subscriptions
            .lock()
            .map_err(runtime_lock)?
            .insert(id, Subscription { channel: channel.clone(), generation, waiter });
        Ok(frames::subscribe(&self.source, channel, id, start))
    }

    /// Hands the relay's answer to subscription `id` to its waiter, or a refusal nobody waits for to its channel.
    pub(super) async fn answer_subscription(&self, id: u64, result: SubscriptionAnswer) {
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

    /// Drops the subscriptions sent on a link up to `generation` (their link is gone).
    pub(super) fn forget_subscriptions(&self, generation: u64) {
        if let Ok(mut subs) = self.subscriptions.lock() {
            subs.retain(|_, s| s.generation > generation);
        }
    }

    /// Hands `event` to `channel`'s queue, waiting while the queue is full.
    pub(super) async fn route(&self, channel: &ChannelName, event: ChannelEvent) {
        let events = self.routes.read().ok().and_then(|routes| routes.get(channel).map(|r| r.events.clone()));
        match events {
            // A closed queue means the channel was just left or removed; nothing more to deliver.
            Some(events) => {
                let _ = events.send(event).await;
            }
            None => tracing::debug!(%channel, "delivery for a channel this client does not hold"),
        }
    }
}
