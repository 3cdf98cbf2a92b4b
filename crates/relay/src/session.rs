//! One client stream: reads its frames in order and acts on each (link negotiation, subscribe, unsubscribe,
//! publish). Publishes are handed to the log writer without waiting, so a client can pipeline them; their
//! replies go through a per-stream pipeline that emits acks and errors in the order the publishes arrived.
//! Malformed frames, undecodable ones included, get an error frame and the stream goes on; the stream only ends
//! when the client leaves or the relay shuts down (or sends a frame over the gRPC size limit).

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use skytale_proto::meta::{self, error_code};
use skytale_proto::pb::{self, message::MessageType};
use skytale_proto::ChannelName;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tonic::{Status, Streaming};

use crate::auth::{RelayAuth, StreamIdentity};
use crate::channel::{ChannelFeed, ChannelHub};
use crate::codec::{InFrame, OutFrame};
use crate::frames::{self, Refusal};
use crate::log::{AppendError, AppendResult, LogWriter};
use crate::publish;
use crate::store::ReadPool;
use crate::subscription::{Cursor, Outbound, StartPoint, SubscriptionTask};

/// Publishes of one stream awaiting their ack; beyond this the stream stops reading (backpressure).
const MAX_PENDING_REPLIES: usize = 1024;

/// What every stream shares: the log, the channel feeds, the limits and how streams are authenticated.
pub struct Shared {
    pub writer: Arc<LogWriter>,
    pub hub: Arc<ChannelHub>,
    pub reader: Arc<ReadPool>,
    pub max_payload: usize,
    pub auth: RelayAuth,
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
        reader: Arc<ReadPool>,
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
    Shutdown,
}

/// Serves one stream until the client leaves or `shutdown` turns true.
pub async fn serve(
    shared: Arc<Shared>,
    identity: StreamIdentity,
    mut inbound: Streaming<InFrame>,
    outbound: Outbound,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut session = Session { shared, identity, outbound, replies: None, subscriptions: HashMap::new() };

    let ending = loop {
        tokio::select! {
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
            _ = crate::stopped(&mut shutdown) => break Ending::Shutdown,
        }
    };
    // Dropping the session stops its cursors and closes the reply queue.
    let Some(ReplyPipeline { queue, mut task }) = session.replies.take() else {
        return;
    };
    drop((session, queue));
    match ending {
        Ending::InboundClosed => {
            tokio::select! {
                _ = &mut task => {}
                _ = crate::stopped(&mut shutdown) => task.abort(),
            }
        }
        Ending::ClientGone | Ending::Shutdown => task.abort(),
    }
}

impl Session {
    async fn dispatch(&mut self, frame: InFrame) -> Result<(), StreamClosed> {
        let pb::Message { message_type, metadata } = match frame {
            Ok(message) => message,
            Err(error) => {
                let refusal = Refusal::new(error_code::BAD_REQUEST, format!("undecodable frame, skipped: {error}"));
                return self.refuse(None, None, &refusal).await;
            }
        };
        match message_type {
            Some(MessageType::Link(pb::Link { link_type: Some(pb::link::LinkType::LinkNegotiation(request)) })) => {
                self.link_negotiation(request, &metadata).await
            }
            Some(MessageType::Subscribe(subscribe)) => self.subscribe(subscribe, &metadata).await,
            Some(MessageType::Unsubscribe(unsubscribe)) => self.unsubscribe(unsubscribe).await,
            Some(MessageType::Publish(publish)) => self.publish(publish, &metadata).await,
            Some(MessageType::Link(_)) | Some(MessageType::SubscriptionAck(_)) | None => {
                let refusal = Refusal::new(
                    error_code::BAD_REQUEST,
                    "unexpected frame: the relay accepts link negotiation, subscribe, unsubscribe and publish",
                );
                self.refuse(None, None, &refusal).await
            }
        }
    }

    /// Answers a link negotiation: at stream open, or an in-band token refresh when it carries
    /// `skytale-authorization` (the reply then says whether the new token was taken).
    async fn link_negotiation(
        &mut self,
        request: pb::LinkNegotiationPayload,
        metadata: &HashMap<String, String>,
    ) -> Result<(), StreamClosed> {
        let max_payload = self.shared.max_payload;
        let reply = match metadata.get(meta::AUTHORIZATION) {
            None => frames::link_reply(&request, max_payload),
            Some(bearer) => match self.identity.refresh(&self.shared.auth, bearer) {
                Ok(()) => {
                    tracing::debug!(identity = self.identity.describe(), "token refreshed");
                    frames::link_reply(&request, max_payload)
                }
                Err(refusal) => {
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
            let task = tokio::spawn(send_replies(pending, outbound.clone()));
            ReplyPipeline { queue, task }
        });
        pipeline.queue.send(reply).await.map_err(|_| StreamClosed)
    }

    /// Answers a publish, head query or unusable frame with an error frame, in reply order. A frame that breaks
    /// the protocol is logged at warn: it is a client bug (or an attack) the operator should hear of, where a
    /// stale epoch or an expired token is the normal course of things.
    async fn refuse(
        &mut self,
        channel: Option<&ChannelName>,
        msg_id: Option<&str>,
        refusal: &Refusal,
    ) -> Result<(), StreamClosed> {
        if let error_code::BAD_REQUEST | error_code::BAD_MESSAGE = refusal.code {
            tracing::warn!(
                identity = self.identity.describe(),
                code = refusal.code,
                "frame refused: {}",
                refusal.message
            );
        }
        let frame = frames::publish_refused(channel, msg_id, refusal);
        self.reply(PendingReply::Frame(Box::new(frame))).await
    }

    /// Starts (or restarts) this stream's subscription to a channel. The ack goes out before the cursor starts,
    /// so the client sees it before the first delivery. A refusal is always answered; success only when the
    /// client asked for an ack (non-zero subscription id, as in SLIM).
    async fn subscribe(
        &mut self,
        subscribe: pb::Subscribe,
        metadata: &HashMap<String, String>,
    ) -> Result<(), StreamClosed> {
        let id = subscribe.subscription_id;
        let destination = subscribe.header.as_ref().and_then(|h| h.destination.as_ref());
        let started = match (channel_of(destination), start_point(metadata)) {
            (Err(refusal), _) | (_, Err(refusal)) => Err(refusal),
            (Ok(channel), Ok(start)) => self.open_cursor(channel, id, start).await,
        };
        match started {
            Ok((channel, cursor, epoch)) => {
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
        &self,
        channel: ChannelName,
        id: u64,
        start: StartPoint,
    ) -> Result<(ChannelName, Cursor, Option<u64>), Refusal> {
        self.identity.authorize(&channel)?;
        let feed = self.shared.hub.feed(&channel);
        let reader = Arc::clone(&self.shared.reader);
        let cursor = Cursor::open(channel.clone(), id, Arc::clone(&feed), reader, start, self.outbound.clone()).await?;
        Ok((channel, cursor, feed.epoch()))
    }

    async fn unsubscribe(&mut self, unsubscribe: pb::Unsubscribe) -> Result<(), StreamClosed> {
        let id = unsubscribe.subscription_id;
        match channel_of(unsubscribe.header.as_ref().and_then(|h| h.destination.as_ref())) {
            Ok(channel) => {
                self.subscriptions.remove(&channel);
                tracing::debug!(%channel, subscription_id = id, "unsubscribed");
                if id != 0 {
                    self.send(frames::subscription_accepted(id, None)).await?;
                }
                Ok(())
            }
            Err(refusal) => self.send(frames::subscription_refused(id, &refusal)).await,
        }
    }

    async fn publish(&mut self, publish: pb::Publish, metadata: &HashMap<String, String>) -> Result<(), StreamClosed> {
        if publish::is_head_query(&publish) {
            return self.head_query(&publish, metadata).await;
        }
        let request = match publish::validate(publish, metadata, self.shared.max_payload) {
            Ok(request) => request,
            Err(refused) => {
                return self.refuse(refused.channel.as_ref(), refused.msg_id.as_deref(), &refused.refusal).await;
            }
        };
        if let Err(refusal) = self.identity.authorize(&request.channel) {
            return self.refuse(Some(&request.channel), Some(&request.msg_id), &refusal).await;
        }
        let (channel, msg_id) = (request.channel.clone(), request.msg_id.clone());
        let reply = match self.shared.writer.submit(request).await {
            Ok(outcome) => PendingReply::Append { channel, msg_id, outcome },
            Err(error) => {
                let refusal = Refusal::new(error_code::STORAGE, error.to_string());
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
        publish: &pb::Publish,
        metadata: &HashMap<String, String>,
    ) -> Result<(), StreamClosed> {
        let query = match publish::validate_head_query(publish, metadata) {
            Ok(query) => query,
            Err(refused) => {
                return self.refuse(refused.channel.as_ref(), refused.msg_id.as_deref(), &refused.refusal).await;
            }
        };
        let from_epoch = self.identity.authorize(&query.channel).and_then(|()| head_query_epoch(metadata));
        let from_epoch = match from_epoch {
            Ok(from_epoch) => from_epoch,
            Err(refusal) => {
                return self.refuse(Some(&query.channel), Some(&query.query_id), &refusal).await;
            }
        };
        let feed = self.shared.hub.feed(&query.channel);
        self.reply(PendingReply::Head {
            channel: query.channel,
            query_id: query.query_id,
            feed,
            reader: Arc::clone(&self.shared.reader),
            from_epoch,
        })
        .await
    }
}

/// Reads the channel name a frame is addressed to.
fn channel_of(destination: Option<&pb::Name>) -> Result<ChannelName, Refusal> {
    let destination =
        destination.ok_or_else(|| Refusal::new(error_code::BAD_REQUEST, "frame without a destination channel"))?;
    ChannelName::from_slim(destination)
        .map_err(|e| Refusal::new(error_code::BAD_REQUEST, format!("bad destination: {e}")))
}

/// Reads the optional `skytale-from-epoch` of a head query (`skytale-from-seq` has no meaning there).
fn head_query_epoch(metadata: &HashMap<String, String>) -> Result<Option<u64>, Refusal> {
    match start_point(metadata)? {
        StartPoint::Live => Ok(None),
        StartPoint::Epoch(epoch) => Ok(Some(epoch)),
        StartPoint::Seq(_) => {
            Err(Refusal::new(error_code::BAD_REQUEST, format!("a head query takes {} only", meta::FROM_EPOCH)))
        }
    }
}

/// The head a query asked for: the highest stored seq, or with `from_epoch`, the highest one a subscription
/// from that epoch delivers (0 if it delivers none yet). Epochs never decrease along the log, so that is the
/// head as soon as any message up to it has an epoch >= `from_epoch`.
async fn queried_head(
    channel: &ChannelName,
    feed: &ChannelFeed,
    reader: Arc<ReadPool>,
    from_epoch: Option<u64>,
) -> Result<u64, Refusal> {
    let head = feed.head();
    let Some(epoch) = from_epoch else {
        return Ok(head);
    };
    let name = channel.to_string();
    let unreadable =
        |e: &dyn std::fmt::Display| Refusal::new(error_code::STORAGE, format!("cannot read the channel log: {e}"));
    let first = tokio::task::spawn_blocking(move || reader.first_seq_from_epoch(&name, epoch))
        .await
        .map_err(|e| unreadable(&e))?
        .map_err(|e| unreadable(&e))?;
    Ok(match first {
        Some(first) if first <= head => head,
        _ => 0,
    })
}

/// Reads `skytale-from-seq` / `skytale-from-epoch` (at most one of them).
fn start_point(metadata: &HashMap<String, String>) -> Result<StartPoint, Refusal> {
    let number = |key: &str| -> Result<Option<u64>, Refusal> {
        metadata
            .get(key)
            .map(|value| {
                value.parse::<u64>().map_err(|_| {
                    Refusal::new(error_code::BAD_REQUEST, format!("{key} must be a decimal number, got {value:?}"))
                })
            })
            .transpose()
    };
    match (number(meta::FROM_SEQ)?, number(meta::FROM_EPOCH)?) {
        (Some(_), Some(_)) => Err(Refusal::new(
            error_code::BAD_REQUEST,
            format!("give {} or {}, not both", meta::FROM_SEQ, meta::FROM_EPOCH),
        )),
        (Some(seq), None) => Ok(StartPoint::Seq(seq)),
        (None, Some(epoch)) => Ok(StartPoint::Epoch(epoch)),
        (None, None) => Ok(StartPoint::Live),
    }
}

/// Emits each owed reply in order, waiting for each append's outcome.
async fn send_replies(mut pending: mpsc::Receiver<PendingReply>, outbound: Outbound) {
    // The encoded ack head of the channel acked last: a publisher usually sends to one channel at a time.
    let mut last_ack_head: Option<(ChannelName, Vec<u8>)> = None;
    while let Some(reply) = pending.recv().await {
        let frame = match reply {
            PendingReply::Frame(frame) => Ok(OutFrame::Message(frame)),
            PendingReply::Fail(status) => Err(status),
            PendingReply::Head { channel, query_id, feed, reader, from_epoch } => {
                Ok(OutFrame::from(match queried_head(&channel, &feed, reader, from_epoch).await {
                    Ok(head) => frames::head_reply(&channel, &query_id, head),
                    Err(refusal) => frames::publish_refused(Some(&channel), Some(&query_id), &refusal),
                }))
            }
            PendingReply::Append { channel, msg_id, outcome } => Ok(match outcome.await {
                Ok(Ok(seq)) => {
                    let head = match &last_ack_head {
                        Some((acked, head)) if *acked == channel => head,
                        _ => &last_ack_head.insert((channel.clone(), frames::ack_head(&channel))).1,
                    };
                    OutFrame::Encoded(frames::publish_acked(head, &msg_id, seq))
                }
                Ok(Err(error)) => {
                    frames::publish_refused(Some(&channel), Some(&msg_id), &append_refusal(&error)).into()
                }
                Err(_) => {
                    let refusal =
                        Refusal::new(error_code::STORAGE, "the log writer stopped before storing the message");
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
        AppendError::ForeignGroup(_) => error_code::BAD_MESSAGE,
        AppendError::Storage(_) => error_code::STORAGE,
    };
    Refusal::new(code, error.to_string())
}
