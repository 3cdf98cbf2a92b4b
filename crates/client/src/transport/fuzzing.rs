//! The transport's side of [`crate::fuzzing`]: one relay frame handed to waiting requests and routed channels
//! exactly as the link reader hands it, on a transport that never opened a link.

use std::collections::HashMap;

use skytale_proto::ChannelName;
use tokio::sync::{mpsc, oneshot};

use super::{ChannelEvent, Endpoints, PublishOutcome, Relay, RelayAccess, Route};
use crate::frames::{Incoming, RelayRefusal, StartPoint};
use crate::identity::{self, MemberProver};
use crate::tls::TrustRoots;

/// The ids the waiting requests of [`dispatch`] are known by. Subscription 1 waits for its ack; subscription 2 was
/// sent without waiting (as a resubscription is).
const PUBLISH_ID: &str = "m-1";
const HEAD_QUERY_ID: &str = "q-1";
const LINK_ID: &str = "l-1";

/// Hands `incoming` to a transport on which a publish, a head query, a token refresh and two subscriptions of
/// `channel` wait and `channel` is routed. Returns what each waiter was answered (by name) and what the channel's
/// queue received.
pub(crate) fn dispatch(
    channel: &ChannelName,
    incoming: Incoming,
) -> (HashMap<&'static str, String>, Option<ChannelEvent>) {
    let relay = Relay::unconnected(RelayAccess {
        endpoints: Endpoints::parse("http://127.0.0.1:1").expect("a valid endpoint"),
        source: channel.to_slim(),
        roots: TrustRoots::default(),
        credentials: None,
        member: MemberProver::new(&identity::generate(b"fuzz").expect("a signing key")),
    });
    let generation = 1;
    let (ack, mut ack_answer) = oneshot::channel::<PublishOutcome>();
    let (head, mut head_answer) = oneshot::channel::<Result<u64, RelayRefusal>>();
    let (refresh, mut refresh_answer) = oneshot::channel::<Result<(), RelayRefusal>>();
    let (subscribed, mut subscription_answer) = oneshot::channel();
    let registered = relay
        .acks
        .register(PUBLISH_ID.to_owned(), generation, ack)
        .and_then(|()| relay.heads.register(HEAD_QUERY_ID.to_owned(), generation, head))
        .and_then(|()| relay.refreshes.register(LINK_ID.to_owned(), generation, refresh))
        .and_then(|_| relay.register_subscription(channel, StartPoint::Seq(1), generation, Some(subscribed)))
        .and_then(|_| relay.register_subscription(channel, StartPoint::Seq(1), generation, None));
    registered.expect("waiters registered on a fresh transport");
    // Room for the one event a frame can route, so dispatching never waits.
    let (events, mut queue) = mpsc::channel(1);
    let route = Route { events, resume_from: Box::new(|| StartPoint::Seq(1)) };
    relay.routes.write().expect("fresh lock").insert(channel.clone(), route);

    futures::executor::block_on(relay.dispatch(incoming));

    let mut answered = HashMap::new();
    if let Ok(outcome) = ack_answer.try_recv() {
        answered.insert("publish", format!("{outcome:?}"));
    }
    if let Ok(outcome) = head_answer.try_recv() {
        answered.insert("head", format!("{outcome:?}"));
    }
    if let Ok(outcome) = refresh_answer.try_recv() {
        answered.insert("refresh", format!("{outcome:?}"));
    }
    if let Ok(outcome) = subscription_answer.try_recv() {
        answered.insert("subscription", format!("{outcome:?}"));
    }
    (answered, queue.try_recv().ok())
}
