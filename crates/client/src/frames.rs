//! Building and reading the SLIM frames of `docs/protocol.md`.
//!
//! Everything that knows which `skytale-` metadata key goes on which frame lives here, so the transport and the
//! channel logic deal only in typed values.

use std::collections::HashMap;

use skytale_proto::meta::{self, error_code};
use skytale_proto::pb::{self, content, link, message};
use skytale_proto::ChannelName;

/// What an MLS blob is, for `ApplicationPayload.payload_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PayloadKind {
    Application,
    Commit,
    Proposal,
    /// The creator's GroupInfo, which creates the channel at the relay.
    GroupInfo,
}

impl PayloadKind {
    fn as_str(self) -> &'static str {
        match self {
            PayloadKind::Application => meta::payload_type::APPLICATION,
            PayloadKind::Commit => meta::payload_type::COMMIT,
            PayloadKind::Proposal => meta::payload_type::PROPOSAL,
            PayloadKind::GroupInfo => meta::payload_type::GROUP_INFO,
        }
    }
}

/// Where a subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StartPoint {
    /// Deliver from this sequence number (inclusive).
    Seq(u64),
    /// Deliver from the first message of this epoch.
    Epoch(u64),
}

/// A refusal from the relay: its stable code and explanation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RelayRefusal {
    pub code: String,
    pub message: String,
}

impl RelayRefusal {
    pub fn is_stale_epoch(&self) -> bool {
        self.code == error_code::STALE_EPOCH
    }
}

/// One message of a channel as the relay delivers it.
#[derive(Clone, Debug)]
pub(crate) struct Delivery {
    pub channel: ChannelName,
    pub seq: u64,
    /// When the relay stored the message (ms since the Unix epoch); `None` from a relay that does not say.
    pub stored_at_ms: Option<u64>,
    pub blob: Vec<u8>,
}

/// An incoming frame, classified.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// The answer to a link negotiation (stream open) or a token refresh, with the relay's payload limit; a
    /// refused token refresh carries the refusal.
    LinkReply {
        link_id: String,
        max_payload: Option<usize>,
        refusal: Option<RelayRefusal>,
    },
    /// On success: the channel's current epoch at the relay (`None`: no message stored yet).
    SubscriptionAck {
        id: u64,
        result: Result<Option<u64>, RelayRefusal>,
    },
    PublishAck {
        msg_id: String,
        seq: u64,
    },
    /// The answer to a head query: the channel's highest stored sequence number (0: none).
    HeadReply {
        query_id: String,
        head: u64,
    },
    PublishRefused {
        msg_id: String,
        refusal: RelayRefusal,
    },
    Delivery(Delivery),
    /// Valid SLIM, but nothing this client acts on (logged and dropped).
    Ignored(&'static str),
}

pub(crate) fn link_negotiation(link_id: &str) -> pb::Message {
    let payload = pb::LinkNegotiationPayload {
        link_id: link_id.to_owned(),
        slim_version: "skytale-1".to_owned(),
        is_reply: false,
        connection_type: pb::LinkConnectionType::Edge as i32,
        ..Default::default()
    };
    pb::Message {
        message_type: Some(message::MessageType::Link(pb::Link {
            link_type: Some(link::LinkType::LinkNegotiation(payload)),
        })),
        metadata: HashMap::new(),
    }
}

/// A token refresh on an open stream (docs/protocol.md "Authentication and token refresh"): a link negotiation
/// carrying the new JWT in `skytale-authorization`.
pub(crate) fn token_refresh(link_id: &str, jwt: &str) -> pb::Message {
    let mut frame = link_negotiation(link_id);
    frame.metadata.insert(meta::AUTHORIZATION.to_owned(), format!("Bearer {jwt}"));
    frame
}

fn header(source: &pb::Name, destination: &ChannelName) -> pb::SlimHeader {
    pb::SlimHeader { source: Some(source.clone()), destination: Some(destination.to_slim()), ..Default::default() }
}

pub(crate) fn subscribe(source: &pb::Name, channel: &ChannelName, id: u64, start: StartPoint) -> pb::Message {
    let (key, value) = match start {
        StartPoint::Seq(s) => (meta::FROM_SEQ, s),
        StartPoint::Epoch(e) => (meta::FROM_EPOCH, e),
    };
    pb::Message {
        message_type: Some(message::MessageType::Subscribe(pb::Subscribe {
            header: Some(header(source, channel)),
            subscription_id: id,
        })),
        metadata: HashMap::from([(key.to_owned(), value.to_string())]),
    }
}

pub(crate) fn unsubscribe(source: &pb::Name, channel: &ChannelName, id: u64) -> pb::Message {
    pb::Message {
        message_type: Some(message::MessageType::Unsubscribe(pb::Unsubscribe {
            header: Some(header(source, channel)),
            subscription_id: id,
        })),
        metadata: HashMap::new(),
    }
}

pub(crate) fn publish(
    source: &pb::Name,
    channel: &ChannelName,
    kind: PayloadKind,
    blob: Vec<u8>,
    msg_id: &str,
) -> pb::Message {
    let publish = pb::Publish {
        header: Some(header(source, channel)),
        session: Some(pb::SessionHeader {
            session_type: pb::SessionType::Multicast as i32,
            session_message_type: pb::SessionMessageType::Msg as i32,
            ..Default::default()
        }),
        msg: Some(pb::Content {
            content_type: Some(content::ContentType::AppPayload(pb::ApplicationPayload {
                payload_type: kind.as_str().to_owned(),
                blob,
            })),
        }),
    };
    pb::Message {
        message_type: Some(message::MessageType::Publish(publish)),
        metadata: HashMap::from([(meta::MSG_ID.to_owned(), msg_id.to_owned())]),
    }
}

/// A head query (docs/protocol.md "Head query"): a content-less `Publish` with `SESSION_MESSAGE_TYPE_PING`, whose
/// `skytale-msg-id` the relay echoes on its answer. With `from_epoch`, the relay only counts messages a
/// subscription from that epoch delivers.
pub(crate) fn head_query(
    source: &pb::Name,
    channel: &ChannelName,
    query_id: &str,
    from_epoch: Option<u64>,
) -> pb::Message {
    let publish = pb::Publish {
        header: Some(header(source, channel)),
        session: Some(pb::SessionHeader {
            session_type: pb::SessionType::Multicast as i32,
            session_message_type: pb::SessionMessageType::Ping as i32,
            ..Default::default()
        }),
        msg: None,
    };
    let mut metadata = HashMap::from([(meta::MSG_ID.to_owned(), query_id.to_owned())]);
    if let Some(epoch) = from_epoch {
        metadata.insert(meta::FROM_EPOCH.to_owned(), epoch.to_string());
    }
    pb::Message { message_type: Some(message::MessageType::Publish(publish)), metadata }
}

fn refusal(metadata: &HashMap<String, String>, fallback: &str) -> RelayRefusal {
    RelayRefusal {
        code: metadata.get(meta::ERROR_CODE).cloned().unwrap_or_else(|| "unknown".to_owned()),
        message: metadata.get(meta::ERROR).cloned().unwrap_or_else(|| fallback.to_owned()),
    }
}

fn number(metadata: &HashMap<String, String>, key: &str) -> Option<u64> {
    metadata.get(key).and_then(|v| v.parse().ok())
}

pub(crate) fn classify(frame: pb::Message) -> Incoming {
    let metadata = frame.metadata;
    match frame.message_type {
        Some(message::MessageType::Link(pb::Link { link_type: Some(link::LinkType::LinkNegotiation(n)) }))
            if n.is_reply =>
        {
            Incoming::LinkReply {
                max_payload: number(&metadata, meta::MAX_PAYLOAD).and_then(|v| usize::try_from(v).ok()),
                refusal: metadata.contains_key(meta::ERROR_CODE).then(|| refusal(&metadata, "token refused")),
                link_id: n.link_id,
            }
        }
        Some(message::MessageType::SubscriptionAck(ack)) => Incoming::SubscriptionAck {
            id: ack.subscription_id,
            result: if ack.success {
                Ok(number(&metadata, meta::CHANNEL_EPOCH))
            } else {
                Err(refusal(&metadata, &ack.error))
            },
        },
        Some(message::MessageType::Publish(p)) => classify_publish(p, metadata),
        _ => Incoming::Ignored("frame type not used by this client"),
    }
}

fn classify_publish(p: pb::Publish, metadata: HashMap<String, String>) -> Incoming {
    let session_type = p.session.as_ref().map(|s| s.session_message_type).unwrap_or_default();
    let is_error = p.header.as_ref().and_then(|h| h.error).unwrap_or(false);
    let msg_id = metadata.get(meta::MSG_ID).cloned();
    if session_type == pb::SessionMessageType::MsgAck as i32 || is_error {
        let Some(msg_id) = msg_id else { return Incoming::Ignored("ack without message id") };
        if is_error {
            return Incoming::PublishRefused { msg_id, refusal: refusal(&metadata, "refused without explanation") };
        }
        if let Some(head) = number(&metadata, meta::HEAD_SEQ) {
            return Incoming::HeadReply { query_id: msg_id, head };
        }
        return match number(&metadata, meta::SEQ) {
            Some(seq) => Incoming::PublishAck { msg_id, seq },
            None => Incoming::Ignored("ack without sequence number"),
        };
    }
    let Some(seq) = number(&metadata, meta::SEQ) else { return Incoming::Ignored("delivery without sequence number") };
    let Some(channel) = p.header.and_then(|h| h.destination).and_then(|d| ChannelName::from_slim(&d).ok()) else {
        return Incoming::Ignored("delivery without a valid channel name");
    };
    let Some(pb::Content { content_type: Some(content::ContentType::AppPayload(payload)) }) = p.msg else {
        return Incoming::Ignored("delivery without application payload");
    };
    let stored_at_ms = number(&metadata, meta::STORED_AT);
    Incoming::Delivery(Delivery { channel, seq, stored_at_ms, blob: payload.blob })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel() -> ChannelName {
        ChannelName::parse("org/ns/svc").unwrap()
    }

    #[test]
    fn publish_round_trips_as_a_delivery() {
        let source = ChannelName::parse("skytale/agent/ab").unwrap().to_slim();
        let mut frame = publish(&source, &channel(), PayloadKind::Commit, vec![1, 2], "id-1");
        frame.metadata.insert(meta::SEQ.into(), "42".into());
        match classify(frame) {
            Incoming::Delivery(d) => {
                assert_eq!((d.channel, d.seq, d.blob), (channel(), 42, vec![1, 2]));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn acks_and_refusals_are_recognised() {
        let source = channel().to_slim();
        let mut ack = publish(&source, &channel(), PayloadKind::Application, vec![], "m");
        if let Some(message::MessageType::Publish(p)) = &mut ack.message_type {
            p.session.as_mut().unwrap().session_message_type = pb::SessionMessageType::MsgAck as i32;
            p.msg = None;
        }
        let mut refused = ack.clone();
        ack.metadata.insert(meta::SEQ.into(), "7".into());
        assert!(matches!(classify(ack), Incoming::PublishAck { ref msg_id, seq: 7 } if msg_id == "m"));

        if let Some(message::MessageType::Publish(p)) = &mut refused.message_type {
            p.header.as_mut().unwrap().error = Some(true);
        }
        refused.metadata.insert(meta::ERROR_CODE.into(), "stale_epoch".into());
        match classify(refused) {
            Incoming::PublishRefused { refusal, .. } => assert!(refusal.is_stale_epoch()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn head_replies_are_told_apart_from_publish_acks() {
        let source = channel().to_slim();
        let mut reply = head_query(&source, &channel(), "q", Some(3));
        assert_eq!(reply.metadata.get(meta::FROM_EPOCH).map(String::as_str), Some("3"));
        if let Some(message::MessageType::Publish(p)) = &mut reply.message_type {
            assert_eq!(p.session.as_ref().unwrap().session_message_type, pb::SessionMessageType::Ping as i32);
            p.session.as_mut().unwrap().session_message_type = pb::SessionMessageType::MsgAck as i32;
        }
        reply.metadata.insert(meta::HEAD_SEQ.into(), "12".into());
        assert!(matches!(classify(reply), Incoming::HeadReply { ref query_id, head: 12 } if query_id == "q"));
    }

    #[test]
    fn token_refresh_carries_the_bearer_and_its_refusal_is_recognised() {
        let frame = token_refresh("l1", "jwt");
        assert_eq!(frame.metadata.get(meta::AUTHORIZATION).map(String::as_str), Some("Bearer jwt"));
        let mut reply = frame.clone();
        if let Some(message::MessageType::Link(pb::Link { link_type: Some(link::LinkType::LinkNegotiation(n)) })) =
            &mut reply.message_type
        {
            n.is_reply = true;
        }
        reply.metadata = HashMap::from([(meta::MAX_PAYLOAD.into(), "10".into())]);
        let mut refused = reply.clone();
        assert!(
            matches!(classify(reply), Incoming::LinkReply { ref link_id, max_payload: Some(10), refusal: None } if link_id == "l1")
        );
        refused.metadata.insert(meta::ERROR_CODE.into(), error_code::UNAUTHORIZED.into());
        refused.metadata.insert(meta::ERROR.into(), "another account".into());
        match classify(refused) {
            Incoming::LinkReply { refusal: Some(r), .. } => {
                assert_eq!((r.code.as_str(), r.message.as_str()), ("unauthorized", "another account"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn subscribe_carries_the_start_point() {
        let frame = subscribe(&channel().to_slim(), &channel(), 3, StartPoint::Epoch(5));
        assert_eq!(frame.metadata.get(meta::FROM_EPOCH).map(String::as_str), Some("5"));
        let frame = subscribe(&channel().to_slim(), &channel(), 3, StartPoint::Seq(9));
        assert_eq!(frame.metadata.get(meta::FROM_SEQ).map(String::as_str), Some("9"));
    }
}
