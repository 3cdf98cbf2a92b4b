//! The frames the relay sends, built in one place so every reply follows `docs/protocol.md` exactly.

use std::collections::HashMap;
use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
use prost::Message as _;

use skytale_proto::meta;
use skytale_proto::pb::{self, message::MessageType};
use skytale_proto::ChannelName;

/// A refused request: a stable `skytale-error-code` and a readable explanation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

fn message(kind: MessageType, metadata: HashMap<String, String>) -> pb::Message {
    pb::Message { message_type: Some(kind), metadata }
}

/// Reply to a client's link negotiation, announcing the payload limit.
pub fn link_reply(request: &pb::LinkNegotiationPayload, max_payload: usize) -> pb::Message {
    let reply = pb::LinkNegotiationPayload {
        link_id: request.link_id.clone(),
        slim_version: request.slim_version.clone(),
        is_reply: true,
        connection_type: request.connection_type,
        ..Default::default()
    };
    let link = pb::Link { link_type: Some(pb::link::LinkType::LinkNegotiation(reply)) };
    message(MessageType::Link(link), HashMap::from([(meta::MAX_PAYLOAD.to_owned(), max_payload.to_string())]))
}

/// Reply to a refused token refresh: the usual link reply plus the refusal; the stream keeps its old token.
pub fn link_refused(request: &pb::LinkNegotiationPayload, max_payload: usize, refusal: &Refusal) -> pb::Message {
    let mut reply = link_reply(request, max_payload);
    reply.metadata.insert(meta::ERROR_CODE.to_owned(), refusal.code.to_owned());
    reply.metadata.insert(meta::ERROR.to_owned(), refusal.message.clone());
    reply
}

/// Successful `SubscriptionAck`, with the channel's current epoch when it has one.
pub fn subscription_accepted(subscription_id: u64, channel_epoch: Option<u64>) -> pb::Message {
    let metadata = channel_epoch
        .map(|epoch| HashMap::from([(meta::CHANNEL_EPOCH.to_owned(), epoch.to_string())]))
        .unwrap_or_default();
    let ack = pb::SubscriptionAck { subscription_id, success: true, error: String::new() };
    message(MessageType::SubscriptionAck(ack), metadata)
}

/// Failed `SubscriptionAck`: also ends a running subscription that can no longer be continued without a gap.
pub fn subscription_refused(subscription_id: u64, refusal: &Refusal) -> pb::Message {
    let ack = pb::SubscriptionAck { subscription_id, success: false, error: refusal.message.clone() };
    let metadata = HashMap::from([(meta::ERROR_CODE.to_owned(), refusal.code.to_owned())]);
    message(MessageType::SubscriptionAck(ack), metadata)
}

/// The `Publish` part of every ack on `channel`, encoded; [`publish_acked`] completes it per message.
pub fn ack_head(channel: &ChannelName) -> Vec<u8> {
    ack_publish(Some(channel), false).encode_to_vec()
}

/// `MSG_ACK` telling the publisher its message is durable at `seq`; `ack_head` is the channel's [`ack_head`].
pub fn publish_acked(ack_head: &[u8], msg_id: &str, seq: u64) -> Bytes {
    let seq = seq.to_string();
    encode_publish_message(ack_head, &[(meta::MSG_ID, msg_id), (meta::SEQ, &seq)]).0
}

/// `MSG_ACK` answering a head query: the channel's highest stored sequence number (0 if none).
pub fn head_reply(channel: &ChannelName, query_id: &str, head: u64) -> pb::Message {
    let metadata =
        HashMap::from([(meta::MSG_ID.to_owned(), query_id.to_owned()), (meta::HEAD_SEQ.to_owned(), head.to_string())]);
    message(MessageType::Publish(ack_publish(Some(channel), false)), metadata)
}

/// Error frame for a refused publish (or any frame the relay cannot act on). `channel` and `msg_id` are echoed
/// when the frame had valid ones, so the client can match the error to its request.
pub fn publish_refused(channel: Option<&ChannelName>, msg_id: Option<&str>, refusal: &Refusal) -> pb::Message {
    let mut metadata = HashMap::from([
        (meta::ERROR_CODE.to_owned(), refusal.code.to_owned()),
        (meta::ERROR.to_owned(), refusal.message.clone()),
    ]);
    if let Some(msg_id) = msg_id {
        metadata.insert(meta::MSG_ID.to_owned(), msg_id.to_owned());
    }
    message(MessageType::Publish(ack_publish(channel, true)), metadata)
}

fn ack_publish(channel: Option<&ChannelName>, error: bool) -> pb::Publish {
    let name = channel.map(ChannelName::to_slim);
    pb::Publish {
        header: Some(pb::SlimHeader {
            source: name.clone(),
            destination: name,
            error: error.then_some(true),
            ..Default::default()
        }),
        session: Some(pb::SessionHeader {
            session_type: pb::SessionType::Multicast.into(),
            session_message_type: pb::SessionMessageType::MsgAck.into(),
            ..Default::default()
        }),
        msg: None,
    }
}

/// The delivery of a stored message, encoded once for every subscriber: a `Message` holding the original
/// `Publish` (`publish`, its encoding as stored) with metadata seq, epoch, storage time and msg id. Returns the
/// encoding and where `publish` sits inside it.
pub fn encode_delivery(publish: &[u8], seq: u64, epoch: u64, stored_at_ms: i64, msg_id: &str) -> (Bytes, Range<usize>) {
    let (seq, epoch, stored_at) = (seq.to_string(), epoch.to_string(), stored_at_ms.to_string());
    encode_publish_message(
        publish,
        &[(meta::SEQ, &seq), (meta::EPOCH, &epoch), (meta::STORED_AT, &stored_at), (meta::MSG_ID, msg_id)],
    )
}

/// Encodes a `Message` carrying an already encoded `Publish` and `metadata`: byte for byte what encoding the
/// equivalent `pb::Message` gives, without decoding and re-encoding the `Publish`. Returns the encoding and where
/// `publish` sits inside it.
fn encode_publish_message(publish: &[u8], metadata: &[(&str, &str)]) -> (Bytes, Range<usize>) {
    let entries_len: usize = metadata
        .iter()
        .map(|(key, value)| {
            let entry = map_entry_len(key, value);
            1 + encoded_len_varint(entry as u64) + entry
        })
        .sum();
    let mut out = BytesMut::with_capacity(1 + encoded_len_varint(publish.len() as u64) + publish.len() + entries_len);
    encode_key(MESSAGE_PUBLISH_FIELD, WireType::LengthDelimited, &mut out);
    encode_varint(publish.len() as u64, &mut out);
    let start = out.len();
    out.put_slice(publish);
    let range = start..out.len();
    for (key, value) in metadata {
        encode_key(MESSAGE_METADATA_FIELD, WireType::LengthDelimited, &mut out);
        encode_varint(map_entry_len(key, value) as u64, &mut out);
        for (field, text) in [(1, key), (2, value)] {
            encode_key(field, WireType::LengthDelimited, &mut out);
            encode_varint(text.len() as u64, &mut out);
            out.put_slice(text.as_bytes());
        }
    }
    (out.freeze(), range)
}

/// Field numbers of `Message.publish` and `Message.metadata` in `data_plane.proto`.
const MESSAGE_PUBLISH_FIELD: u32 = 3;
const MESSAGE_METADATA_FIELD: u32 = 4;

/// Encoded length of one `map<string, string>` entry (key = field 1, value = field 2).
fn map_entry_len(key: &str, value: &str) -> usize {
    [key, value].iter().map(|text| 1 + encoded_len_varint(text.len() as u64) + text.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_delivery_is_the_publish_with_its_metadata() {
        let channel = ChannelName::parse("acme/team/news").unwrap();
        let publish = pb::Publish {
            msg: Some(pb::Content {
                content_type: Some(pb::content::ContentType::AppPayload(pb::ApplicationPayload {
                    payload_type: meta::payload_type::APPLICATION.to_owned(),
                    blob: vec![7; 300],
                })),
            }),
            ..ack_publish(Some(&channel), false)
        };
        let stored = publish.encode_to_vec();
        let (bytes, range) = encode_delivery(&stored, 42, 3, 1_700_000_000_123, "id-1");
        assert_eq!(&bytes[range], stored.as_slice());
        let expected = message(
            MessageType::Publish(publish),
            HashMap::from([
                (meta::SEQ.to_owned(), "42".to_owned()),
                (meta::EPOCH.to_owned(), "3".to_owned()),
                (meta::STORED_AT.to_owned(), "1700000000123".to_owned()),
                (meta::MSG_ID.to_owned(), "id-1".to_owned()),
            ]),
        );
        assert_eq!(pb::Message::decode(bytes).unwrap(), expected);
    }

    #[test]
    fn an_encoded_ack_is_the_ack_message() {
        let channel = ChannelName::parse("acme/team/news").unwrap();
        let bytes = publish_acked(&ack_head(&channel), "id-9", 7);
        let expected = message(
            MessageType::Publish(ack_publish(Some(&channel), false)),
            HashMap::from([(meta::MSG_ID.to_owned(), "id-9".to_owned()), (meta::SEQ.to_owned(), "7".to_owned())]),
        );
        assert_eq!(pb::Message::decode(bytes).unwrap(), expected);
    }
}
