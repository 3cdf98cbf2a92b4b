//! One client stream: reads its frames in order and acts on each (link negotiation, subscribe, unsubscribe,
//! publish). Publishes are handed to the log writer without waiting, so a client can pipeline them; their
//! replies go through a per-stream pipeline that emits acks and errors in the order the publishes arrived.
//! Malformed frames, undecodable ones included, get an error frame and the stream goes on; the stream only ends
//! when the client leaves (or sends a frame over the gRPC size limit), when the relay drains ([`drain`]: the
//! replies owed first, then the notice), or when its [`StreamGuard`] ends it: idle without a subscription, or its
//! token expired past the grace period.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use skytale_proto::meta::error_code;
use skytale_proto::pb;
use skytale_proto::ChannelName;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tonic::{Status, Streaming};
use tracing::Instrument;

use crate::access;
use crate::append::{AppendError, AppendResult};
use crate::auth::{RelayAuth, StreamIdentity};
use crate::channel::ChannelFeed;
use crate::codec::{InFrame, OutFrame};
use crate::drain;
use crate::frames::{self, Refusal};
use crate::inflight::{DeliveryBudget, InFlight};
use crate::log::{AppendRequest, ChannelLog};
use crate::metrics::RelayMetrics;
use crate::mls_framing::ContentType;
use crate::publish::HeadQuery;
use crate::quotas::AccountQuotas;
use crate::request::{self, Request};
use crate::stream_guard::{StreamEnd, StreamGuard, StreamLimits};
use crate::subscription::{unreadable_log, Cursor, Outbound, Recipient, StartPoint, SubscriptionTask};

/// Publishes of one stream awaiting their ack; beyond this the stream stops reading (backpressure).
const MAX_PENDING_REPLIES: usize = 1024;

/// What every stream shares: the log, the channel feeds, the limits and how streams are authenticated.
pub struct Shared {
    pub log: Arc<dyn ChannelLog>,
    pub max_payload: usize,
    pub auth: RelayAuth,
    /// Whether channels are created, written and read by MLS membership (auth on), see `access` and `groups`.
    pub follows_groups: bool,
    pub limits: StreamLimits,
    pub in_flight: Arc<InFlight>,
    /// Each account's open streams and publish rate (auth on).
    pub quotas: Arc<AccountQuotas>,
    pub metrics: Arc<RelayMetrics>,
}

/// The client stopped reading or went away: nothing more can be sent on this stream.
struct StreamClosed;

/// A reply owed to the client, in the order its requests arrived.
enum PendingReply {
    // Boxed: a frame is much larger than the other variants.
    Frame(Box<pb::Message>),
    Append {
        channel: ChannelName,
        msg_id: String,
        outcome: oneshot::Receiver<AppendResult>,
    },
    /// A head query: the feed is read when the reply's turn comes, i.e. after every earlier publish of this
    /// stream was stored, so the answer covers them.
    Head {
        channel: ChannelName,
        query_id: String,
        feed: Arc<ChannelFeed>,
        log: Arc<dyn ChannelLog>,
        from_epoch: Option<u64>,
    },
    Fail(Status),
}

struct Session {
    shared: Arc<Shared>,
    identity: StreamIdentity,
    outbound: Outbound,
    /// Started by the first publish or head query: a stream that only subscribes (most of them, idle most of
    /// the time) never pays for the queue and task.
    replies: Option<ReplyPipeline>,
    subscriptions: HashMap<ChannelName, SubscriptionTask>,
    guard: StreamGuard,
}

/// The ordered reply queue and the task that emits it.
struct ReplyPipeline {
    queue: mpsc::Sender<PendingReply>,
    task: JoinHandle<()>,
}

/// How the read loop ended.
enum Ending {
    /// The client finished sending: owed replies are still delivered.
    InboundClosed,
    ClientGone,
    /// The relay drains: deliveries stop, owed replies are delivered, then the notice.
    Draining,
}

/// Serves one stream until the client leaves, `shutdown` turns true (the relay drains) or its guard ends it; its
/// deliveries draw from `budget`.
pub async fn serve(
    shared: Arc<Shared>,
    identity: StreamIdentity,
    mut inbound: Streaming<InFrame>,
    outbound: Outbound,
    mut shutdown: watch::Receiver<bool>,
    budget: DeliveryBudget,
) {
    let guard = StreamGuard::new(shared.limits, budget, identity.valid_through(), identity.describe());
    let mut session = Session { shared, identity, outbound, replies: None, subscriptions: HashMap::new(), guard };
    // Activity only moves the guard's deadlines later, so the timer is armed for the earliest one and the guard
    // is asked again when it fires, instead of re-arming it on every frame.
    let checkup = tokio::time::sleep(std::time::Duration::ZERO);
    tokio::pin!(checkup);

    let ending = loop {
        tokio::select! {
            () = &mut checkup => match session.guard.check(!session.subscriptions.is_empty()) {
                Ok(next) => checkup.as_mut().reset(next.into()),
                Err(end) => {
                    // Boxed, like frame handling: an idle stream should only hold what waiting takes.
                    let _ = Box::pin(session.end(end)).await;
                    break Ending::InboundClosed;
                }
            },
            frame = inbound.next() => match frame {
                Some(Ok(frame)) => {
                    // Boxed: handling a frame needs far more state than waiting for one, and an idle stream
                    // should only hold the latter.
                    if Box::pin(session.dispatch(frame)).await.is_err() {
                        break Ending::ClientGone;
                    }
                }
                Some(Err(status)) => {
                    tracing::warn!(%status, "stream failed");
                    // Tell the client why (e.g. an oversize frame) after the replies it is owed.
                    let _ = session.reply(PendingReply::Fail(status)).await;
                    break Ending::InboundClosed;
                }
                None => break Ending::InboundClosed,
            },
            _ = crate::stopped(&mut shutdown) => break Ending::Draining,
        }
    };
    // Frames the client sent after this point are not read: the publishes among them are never answered, so the
    // client sends them again on its next stream (the relay stores a msg-id once).
    drop(inbound);
    if let Ending::Draining = ending {
        // Deliveries stop before the notice is queued, behind every reply owed.
        session.subscriptions.clear();
        let _ = Box::pin(session.end(drain::notice())).await;
    }
    // Dropping the session stops its cursors and closes the reply queue.
    let Some(ReplyPipeline { queue, task }) = session.replies.take() else {
        return;
    };
    drop((session, queue));
    match ending {
        // The pipeline ends once it has written everything, or once the connection is gone: the client left, or
        // the relay cut it at the end of its drain timeout.
        Ending::InboundClosed | Ending::Draining => {
            let _ = task.await;
        }
        Ending::ClientGone => task.abort(),
    }
}

impl Session {
    /// Acts on one frame, as [`request::read`] reads it.
    async fn dispatch(&mut self, frame: InFrame) -> Result<(), StreamClosed> {
        match request::read(frame, self.shared.max_payload) {
            Request::Link { negotiation, bearer } => self.link_negotiation(negotiation, bearer.as_deref()).await,
            Request::Subscribe { id, target } => self.subscribe(id, target).await,
            Request::Unsubscribe { id, channel } => self.unsubscribe(id, channel).await,
            Request::Head { query, from_epoch } => self.head_query(query, from_epoch).await,
            Request::Append(request) => self.append(request).await,
            Request::Refused(refused) => {
                self.refuse(refused.channel.as_ref(), refused.msg_id.as_deref(), &refused.refusal).await
            }
        }
    }

    /// Answers a link negotiation: at stream open, or an in-band token refresh when it carries
    /// `skytale-authorization` (the reply then says whether the new token was taken).
    async fn link_negotiation(
        &mut self,
        request: pb::LinkNegotiationPayload,
        bearer: Option<&str>,
    ) -> Result<(), StreamClosed> {
        let max_payload = self.shared.max_payload;
        let reply = match bearer {
            None => frames::link_reply(&request, max_payload),
            Some(bearer) => match self.identity.refresh(&self.shared.auth, bearer).await {
                Ok(()) => {
                    tracing::debug!(identity = self.identity.describe(), "token refreshed");
                    self.guard.token_refreshed(self.identity.valid_through());
                    frames::link_reply(&request, max_payload)
                }
                Err((reason, refusal)) => {
                    self.shared.metrics.auth_failed(reason);
                    tracing::info!(identity = self.identity.describe(), "token refresh refused: {}", refusal.message);
                    frames::link_refused(&request, max_payload, &refusal)
                }
            },
        };
        self.send(reply).await
    }

    async fn send(&self, frame: pb::Message) -> Result<(), StreamClosed> {
        self.outbound.send(Ok(frame.into())).await.map_err(|_| StreamClosed)
    }

    async fn reply(&mut self, reply: PendingReply) -> Result<(), StreamClosed> {
        let outbound = &self.outbound;
        let pipeline = self.replies.get_or_insert_with(|| {
            let (queue, pending) = mpsc::channel(MAX_PENDING_REPLIES);
            let replies = send_replies(pending, outbound.clone(), Arc::clone(&self.shared.metrics));
            let task = tokio::spawn(replies.in_current_span());
            ReplyPipeline { queue, task }
        });
        pipeline.queue.send(reply).await.map_err(|_| StreamClosed)
    }

    /// Answers a publish, head query or unusable frame with an error frame, in reply order. A frame that breaks
    /// the protocol is logged at warn: it is a client bug (or an attack) the operator should hear of, where a
    /// stale epoch or an expired token is the normal course of things. Only the first ten of each minute are
    /// logged, and then a count, so that a client cannot flood the log (`stream_guard`).
    async fn refuse(
        &mut self,
        channel: Option<&ChannelName>,
        msg_id: Option<&str>,
        refusal: &Refusal,
    ) -> Result<(), StreamClosed> {
        if matches!(refusal.code, error_code::BAD_REQUEST | error_code::BAD_MESSAGE) && self.guard.log_refusal() {
            tracing::warn!(
                identity = self.identity.describe(),
                channel = channel.map(tracing::field::display),
                code = refusal.code,
                "frame refused: {}",
                refusal.message
            );
        }
        self.shared.metrics.publish_refused(refusal.code);
        let frame = frames::publish_refused(channel, msg_id, refusal);
        self.reply(PendingReply::Frame(Box::new(frame))).await
    }

    /// Starts (or restarts) this stream's subscription to a channel. The ack goes out before the cursor starts,
    /// so the client sees it before the first delivery. A refusal is always answered; success only when the
    /// client asked for an ack (non-zero subscription id, as in SLIM).
    async fn subscribe(
        &mut self,
        id: u64,
        target: Result<(ChannelName, StartPoint), Refusal>,
    ) -> Result<(), StreamClosed> {
        let started = match target {
            Err(refusal) => Err(refusal),
            Ok((channel, start)) => self.open_cursor(channel, id, start).await,
        };
        match started {
            Ok((channel, cursor, epoch)) => {
                self.guard.used();
                // Replacing an older subscription to the same channel stops it first.
                self.subscriptions.remove(&channel);
                if id != 0 {
                    self.send(frames::subscription_accepted(id, epoch)).await?;
                }
                tracing::debug!(%channel, subscription_id = id, "subscribed");
                self.subscriptions.insert(channel, cursor.spawn());
                Ok(())
            }
            Err(refusal) => self.send(frames::subscription_refused(id, &refusal)).await,
        }
    }

    /// Positions a cursor for an authorised subscription; returns it with the channel's current epoch.
    async fn open_cursor(
        &mut self,
        channel: ChannelName,
        id: u64,
        start: StartPoint,
    ) -> Result<(ChannelName, Cursor, Option<u64>), Refusal> {
        let shared = Arc::clone(&self.shared);
        let members = access::authorize_read(&self.identity, &shared.log, &channel, shared.follows_groups).await?;
        self.admit_subscription(&channel)?;
        let feed = shared.log.feed(&channel).await.map_err(unreadable_log)?;
        let log = Arc::clone(&shared.log);
        let recipient = Recipient {
            outbound: self.outbound.clone(),
            members,
            gate: self.guard.gate(),
            metrics: Arc::clone(&shared.metrics),
        };
        let cursor = Cursor::open(channel.clone(), id, Arc::clone(&feed), log, start, recipient).await?;
        Ok((channel, cursor, feed.epoch()))
    }

    async fn unsubscribe(&mut self, id: u64, channel: Result<ChannelName, Refusal>) -> Result<(), StreamClosed> {
        match channel {
            Ok(channel) => {
                if self.subscriptions.remove(&channel).is_some() {
                    // A stream's idle time counts from when its last subscription ended.
                    self.guard.used();
                }
                tracing::debug!(%channel, subscription_id = id, "unsubscribed");
                if id != 0 {
                    self.send(frames::subscription_accepted(id, None)).await?;
                }
                Ok(())
            }
            Err(refusal) => self.send(frames::subscription_refused(id, &refusal)).await,
        }
    }

    /// Hands a valid publish to the log writer, if this stream may write its channel and its account is within
    /// its publish rate (`quotas`); the ack (or refusal) is owed in reply order. Whether it may write an existing
    /// channel is its group's business (the log writer's check of the stream's member key); the token decides
    /// creation.
    async fn append(&mut self, mut request: AppendRequest) -> Result<(), StreamClosed> {
        let creating = request.header.content_type == ContentType::GroupInfo;
        if let Err(refusal) = self.identity.authorize_publish(&request.channel, creating) {
            return self.refuse(Some(&request.channel), Some(&request.msg_id), &refusal).await;
        }
        if let Err(refusal) = self.guard.admit_name(&request.channel) {
            return self.refuse(Some(&request.channel), Some(&request.msg_id), &refusal).await;
        }
        // Last before the log: a publish refused for any other reason costs the account nothing, and one refused
        // here costs the log nothing.
        if let Some(account) = self.identity.account() {
            if let Err(refusal) = self.shared.quotas.publish(account, request.size) {
                return self.refuse(Some(&request.channel), Some(&request.msg_id), &refusal).await;
            }
        }
        self.guard.used();
        request.sender = self.identity.member_key().cloned();
        if creating {
            request.creator = self.identity.creator();
        }
        let (channel, msg_id) = (request.channel.clone(), request.msg_id.clone());
        let reply = match self.shared.log.append(request).await {
            Ok(outcome) => PendingReply::Append { channel, msg_id, outcome },
            Err(error) => {
                let refusal = Refusal::new(error_code::STORAGE, error.to_string());
                self.shared.metrics.publish_refused(refusal.code);
                PendingReply::Frame(Box::new(frames::publish_refused(Some(&channel), Some(&msg_id), &refusal)))
            }
        };
        self.reply(reply).await
    }
}

impl Session {
    /// Answers a head query (docs/protocol.md "Head query") through the reply pipeline, authorised like a
    /// subscription since it reveals how far the channel's log goes.
    async fn head_query(
        &mut self,
        query: HeadQuery,
        from_epoch: Result<Option<u64>, Refusal>,
    ) -> Result<(), StreamClosed> {
        let shared = &self.shared;
        let authorized = access::authorize_read(&self.identity, &shared.log, &query.channel, shared.follows_groups);
        let from_epoch = authorized.await.and(from_epoch);
        let from_epoch = match from_epoch {
            Ok(from_epoch) => from_epoch,
            Err(refusal) => {
                return self.refuse(Some(&query.channel), Some(&query.query_id), &refusal).await;
            }
        };
        if let Err(refusal) = self.guard.admit_name(&query.channel) {
            return self.refuse(Some(&query.channel), Some(&query.query_id), &refusal).await;
        }
        self.guard.used();
        let feed = match self.shared.log.feed(&query.channel).await {
            Ok(feed) => feed,
            Err(error) => {
                let refusal = unreadable_log(error);
                return self.refuse(Some(&query.channel), Some(&query.query_id), &refusal).await;
            }
        };
        self.reply(PendingReply::Head {
            channel: query.channel,
            query_id: query.query_id,
            feed,
            log: Arc::clone(&self.shared.log),
            from_epoch,
        })
        .await
    }

    /// The per-stream caps a new subscription must fit (`stream_guard`).
    fn admit_subscription(&mut self, channel: &ChannelName) -> Result<(), Refusal> {
        let replacing = self.subscriptions.contains_key(channel);
        self.guard.admit_subscription(self.subscriptions.len(), replacing)?;
        self.guard.admit_name(channel)
    }

    /// Ends the stream on its guard's word: after every reply it is owed, the error frame saying why, then the
    /// stream's status.
    async fn end(&mut self, end: StreamEnd) -> Result<(), StreamClosed> {
        tracing::info!(identity = self.identity.describe(), "{}", end.refusal.message);
        self.reply(PendingReply::Frame(Box::new(frames::publish_refused(None, None, &end.refusal)))).await?;
        self.reply(PendingReply::Fail(end.status)).await
    }
}

/// The head a query asked for: the highest stored seq, or with `from_epoch`, the highest one a subscription
/// from that epoch delivers (0 if it delivers none yet). Epochs never decrease along the log, so that is the
/// head as soon as any message up to it has an epoch >= `from_epoch`.
async fn queried_head(
    channel: &ChannelName,
    feed: &ChannelFeed,
    log: Arc<dyn ChannelLog>,
    from_epoch: Option<u64>,
) -> Result<u64, Refusal> {
    let head = feed.head();
    let Some(epoch) = from_epoch else {
        return Ok(head);
    };
    let first = log.first_seq_from_epoch(channel, epoch).await.map_err(unreadable_log)?;
    Ok(match first {
        Some(first) if first <= head => head,
        _ => 0,
    })
}

/// Emits each owed reply in order, waiting for each append's outcome, which it counts in `metrics`.
async fn send_replies(mut pending: mpsc::Receiver<PendingReply>, outbound: Outbound, metrics: Arc<RelayMetrics>) {
    // The encoded ack head of the channel acked last: a publisher usually sends to one channel at a time.
    let mut last_ack_head: Option<(ChannelName, Vec<u8>)> = None;
    while let Some(reply) = pending.recv().await {
        let frame = match reply {
            PendingReply::Frame(frame) => Ok(OutFrame::Message(frame)),
            PendingReply::Fail(status) => Err(status),
            PendingReply::Head { channel, query_id, feed, log, from_epoch } => {
                Ok(OutFrame::from(match queried_head(&channel, &feed, log, from_epoch).await {
                    Ok(head) => frames::head_reply(&channel, &query_id, head),
                    Err(refusal) => frames::publish_refused(Some(&channel), Some(&query_id), &refusal),
                }))
            }
            PendingReply::Append { channel, msg_id, outcome } => Ok(match outcome.await {
                Ok(Ok(seq)) => {
                    metrics.publishes_accepted.inc();
                    let head = match &last_ack_head {
                        Some((acked, head)) if *acked == channel => head,
                        _ => &last_ack_head.insert((channel.clone(), frames::ack_head(&channel))).1,
                    };
                    OutFrame::Encoded(frames::publish_acked(head, &msg_id, seq))
                }
                Ok(Err(error)) => {
                    let refusal = append_refusal(&error);
                    metrics.publish_refused(refusal.code);
                    frames::publish_refused(Some(&channel), Some(&msg_id), &refusal).into()
                }
                Err(_) => {
                    let refusal =
                        Refusal::new(error_code::STORAGE, "the log writer stopped before storing the message");
                    metrics.publish_refused(refusal.code);
                    frames::publish_refused(Some(&channel), Some(&msg_id), &refusal).into()
                }
            }),
        };
        if outbound.send(frame).await.is_err() {
            return;
        }
    }
}

fn append_refusal(error: &AppendError) -> Refusal {
    let code = match error {
        AppendError::StaleEpoch { .. } => error_code::STALE_EPOCH,
        AppendError::ForeignGroup(_) | AppendError::NotCreated(_) | AppendError::InvalidHandshake(_) => {
            error_code::BAD_MESSAGE
        }
        AppendError::ChannelExists(_) => error_code::CHANNEL_EXISTS,
        AppendError::QuotaExceeded(_) => error_code::QUOTA_EXCEEDED,
        AppendError::Untracked(_) | AppendError::NotMember(_) => error_code::UNAUTHORIZED,
        AppendError::Storage(_) => error_code::STORAGE,
    };
    Refusal::new(code, error.to_string())
}
