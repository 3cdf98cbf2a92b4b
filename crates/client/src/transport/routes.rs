//! Routes: where each channel's deliveries and subscription refusals go, and the subscriptions that feed them,
//! renewed on every new link from the position the channel reports.

use skytale_proto::pb;
use skytale_proto::ChannelName;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout_at, Instant};

use super::link::Link;
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

pub(super) struct Subscription {
    pub channel: ChannelName,
    pub generation: u64,
    pub waiter: Option<oneshot::Sender<Result<Option<u64>, RelayRefusal>>>,
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
