//! The client's single gRPC stream to the relay (`DataPlaneService/OpenChannel`), kept alive across outages.
//!
//! A supervisor task owns the stream: it opens it, negotiates the link (learning the relay's payload limit),
//! resubscribes every routed channel from the position the channel reports, and reads frames until the stream
//! breaks; then it reconnects with exponential backoff (capped at [`rotation::MAX_BACKOFF`]). Configured with several
//! relay endpoints ([`endpoints`]), it moves to the next one whenever a link fails, is lost or drained (failover).
//! Callers never see the individual links, nor which relay they are on: [`Relay::publish`] waits for a link, sends, and if the link dies before the relay answers it
//! resends the same frame (same msg-id, which the relay deduplicates) on the next link, up to a deadline and a
//! few lost links. A frame whose MLS message exceeds the payload limit the link's relay announced is never sent:
//! past the relay's frame limit it would end the stream, on every link it was resent on.
//!
//! Deliveries go to each channel's bounded queue with `send().await`, so a channel that falls behind slows the
//! stream (HTTP/2 flow control) instead of losing messages.
//!
//! With credentials (an API key), every link is opened with a freshly fetched `authorization: Bearer <JWT>`, and
//! a refresher task replaces the open link's token in-band (a `Link` frame with `skytale-authorization`, see
//! docs/protocol.md) when the token reaches two thirds of its lifetime, without dropping the stream.
//!
//! [`endpoints`] parses the configured relay URLs and [`rotation`] picks the one for the next attempt; [`link`] opens,
//! supervises and re-authenticates the stream; [`requests`] matches the relay's answers to the
//! requests waiting for them (publishes, head queries, token refreshes); [`routes`] hands each channel its
//! deliveries and keeps its subscription.

mod endpoints;
#[doc(hidden)]
pub(crate) mod fuzzing;
mod link;
mod requests;
mod rotation;
mod routes;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use skytale_proto::pb;
use skytale_proto::ChannelName;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::credentials::Credentials;
use crate::error::Error;
use crate::frames::RelayRefusal;
use crate::identity::MemberProver;
use crate::tls::TrustRoots;
use link::Link;
use requests::Waiters;
use routes::Subscription;

pub(crate) use endpoints::Endpoints;
pub(crate) use requests::{BatchOutcome, PublishOutcome};
pub(crate) use routes::{ChannelEvent, Route};

/// How long a publish or subscribe keeps trying across outages before failing with a transport error.
pub(crate) const SEND_DEADLINE: Duration = Duration::from_secs(30);

/// How the transport reaches and authenticates to the relay.
pub(crate) struct RelayAccess {
    /// Tried in turn: the first one that answers carries the first link, the next one takes over when it fails.
    pub endpoints: Endpoints,
    pub source: pb::Name,
    pub roots: TrustRoots,
    /// `None`: anonymous streams (a relay run with `--auth none`).
    pub credentials: Option<Arc<Credentials>>,
    /// Signs every stream's member proof.
    pub member: MemberProver,
}

/// Shared state of the relay connection.
pub(crate) struct Relay {
    endpoints: Endpoints,
    source: pb::Name,
    roots: TrustRoots,
    credentials: Option<Arc<Credentials>>,
    member: MemberProver,
    link: watch::Sender<Option<Link>>,
    /// While no link is up because the relay refused the last attempt to open one for a quota (the account has its
    /// limit of streams open), why: calls that need a link fail with it at once instead of waiting out their
    /// deadline, while the supervisor keeps trying in case one of the account's streams ends.
    quota_refusal: Mutex<Option<String>>,
    generation: AtomicU64,
    next_id: AtomicU64,
    max_payload: AtomicUsize,
    /// Publishes waiting for the relay's verdict, by msg-id.
    acks: Waiters<PublishOutcome>,
    /// Head queries waiting for the relay's answer, by query id.
    heads: Waiters<Result<u64, RelayRefusal>>,
    subscriptions: Mutex<HashMap<u64, Subscription>>,
    /// Token refreshes waiting for the relay's reply, by link id.
    refreshes: Waiters<Result<(), RelayRefusal>>,
    routes: RwLock<HashMap<ChannelName, Route>>,
    shutdown: watch::Sender<bool>,
}

impl Relay {
    /// Connects to the first relay endpoint that answers (failing fast if none does, or if a relay refuses the
    /// credentials) and starts the supervisor task, plus the token refresher when there are credentials.
    pub async fn connect(access: RelayAccess) -> Result<Arc<Self>, Error> {
        let relay = Self::unconnected(access);
        let (endpoint, first) = relay.open_first_link().await?;
        tokio::spawn(relay.clone().supervise(endpoint, Some(first)));
        // Returns once the supervisor has put the link up, so the client is `connected` from the start.
        relay.wait_for_link(Instant::now() + link::CONNECT_TIMEOUT).await?;
        if let Some(credentials) = relay.credentials.clone() {
            tokio::spawn(relay.clone().keep_token_fresh(credentials));
        }
        Ok(relay)
    }

    /// The transport's state before any link: nothing routed, nothing waiting.
    fn unconnected(access: RelayAccess) -> Arc<Self> {
        Arc::new(Self {
            endpoints: access.endpoints,
            source: access.source,
            roots: access.roots,
            credentials: access.credentials,
            member: access.member,
            link: watch::Sender::new(None),
            quota_refusal: Mutex::new(None),
            generation: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            max_payload: AtomicUsize::new(skytale_proto::meta::DEFAULT_MAX_PAYLOAD),
            acks: Waiters::default(),
            heads: Waiters::default(),
            subscriptions: Mutex::new(HashMap::new()),
            refreshes: Waiters::default(),
            routes: RwLock::new(HashMap::new()),
            shutdown: watch::Sender::new(false),
        })
    }

    /// Largest MLS message the relay accepts, as negotiated on the current (or last) link.
    pub fn max_payload(&self) -> usize {
        self.max_payload.load(Ordering::Relaxed)
    }

    /// Whether a stream to the relay is open right now. While it is not, the transport reconnects on its own and
    /// calls wait for it (up to their deadlines).
    pub fn is_connected(&self) -> bool {
        self.link.borrow().is_some()
    }

    /// Calls `on_change` with the new state each time a stream to the relay comes up or goes down, until the
    /// transport shuts down (its own `false` then is not reported: the client was closed, not disconnected). A
    /// link replaced faster than the returned future looked is still reported, as `false` then `true`. The state
    /// changes are counted from this call, not from the future's first poll: a link lost before the task that
    /// runs the future starts is still reported.
    pub fn watch_connection(&self, on_change: impl Fn(bool)) -> impl Future<Output = ()> {
        let mut link = self.link.subscribe();
        let mut shutdown = self.shutdown.subscribe();
        let mut seen = link.borrow_and_update().as_ref().map(|link| link.generation);
        async move {
            loop {
                tokio::select! {
                    biased;
                    _ = shutdown.wait_for(|stopped| *stopped) => return,
                    changed = link.changed() => if changed.is_err() { return },
                }
                // `shutdown` is set before the link is taken down, so a closing client reports nothing.
                if *shutdown.borrow() {
                    return;
                }
                let now = link.borrow_and_update().as_ref().map(|link| link.generation);
                match (seen, now) {
                    (Some(_), None) => on_change(false),
                    (None, Some(_)) => on_change(true),
                    (Some(before), Some(after)) if before != after => {
                        on_change(false);
                        on_change(true);
                    }
                    _ => {}
                }
                seen = now;
            }
        }
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
}

fn runtime_lock<T>(_: T) -> Error {
    Error::Runtime("transport lock poisoned".into())
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
