//! Entry points for the fuzz targets in `fuzz/` (docs/security.md, "Fuzzing") and for the tests that replay
//! their seed corpus: the relay's handling of one client frame, run without a network, a log or a session. Not
//! a stable API (hidden from the docs).
//!
//! [`client_frame`] runs a frame through the same code a stream's session does up to the point where it needs the
//! log or the channel feeds: the gRPC codec, [`request::read`] (with [`publish`] and [`mls_framing`]), the
//! stream identity's checks (token refresh, channel authorisation) and the reply frames of [`frames`]. On the way
//! it asserts what must hold for any input, so a violation is a crash the fuzzer reports.
//!
//! [`publish`]: crate::publish
//! [`mls_framing`]: crate::mls_framing

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http_body::Frame;
use prost::Message as _;
use skytale_auth::{Claims, TokenVerifier};
use skytale_proto::meta;
use skytale_proto::pb::{self, message::MessageType};
use skytale_proto::ChannelName;
use tonic::codec::Streaming;

use crate::auth::{RelayAuth, StreamIdentity};
use crate::codec::{FrameDecoder, InFrame};
use crate::frames::{self, Refusal};
use crate::log::AppendRequest;
use crate::mls_framing::{self, ContentType};
use crate::request::{self, Request};

/// The payload limit the fuzzed relay runs with: small, so that oversize payloads are within the fuzzer's reach.
pub const MAX_PAYLOAD: usize = 2048;

/// The account every fuzzed stream belongs to (org `acme`, granted `other/granted/channel`).
pub const ACCOUNT: &str = "acct_fuzz";

/// The public half of the key that signs the corpus's tokens: Ed25519 with the 32-byte seed `[7; 32]`, a test key
/// known to everyone and trusted by nothing but [`client_frame`].
pub const JWKS: &str =
    r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"6kpsY-KcUgq-9VB7Ey7F-ZVHdq6-vnuSQh7qaRRG0iw","kid":"fuzz"}]}"#;

/// What the relay made of a client frame.
#[derive(Debug)]
pub struct Handled {
    /// The kind of request: `link`, `refresh`, `subscribe`, `unsubscribe`, `head` or `append`, followed by
    /// ` refused <code>` when the relay refused it.
    pub kind: String,
    /// The frames the relay answers with, encoded as they go out.
    pub replies: Vec<Bytes>,
    /// For a stored publish: what every subscriber is sent, encoded.
    pub delivery: Option<Delivered>,
}

/// An accepted publish as its subscribers get it.
#[derive(Debug)]
pub struct Delivered {
    pub channel: ChannelName,
    /// The MLS message the publish carries.
    pub blob: Vec<u8>,
    /// The delivery frame, encoded.
    pub frame: Bytes,
}

/// Runs `frame` (the bytes of one gRPC message from a client) through the relay's handling of client frames.
///
/// # Panics
/// When any of the relay's invariants is broken: that is what the fuzzer looks for.
pub fn client_frame(frame: &[u8]) -> Handled {
    let decoded = decode(frame);
    let mut identity = account();
    match request::read(decoded, MAX_PAYLOAD) {
        Request::Link { negotiation, bearer: None } => {
            handled("link", vec![encode(&frames::link_reply(&negotiation, MAX_PAYLOAD))])
        }
        Request::Link { negotiation, bearer: Some(bearer) } => {
            match futures::executor::block_on(identity.refresh(auth(), &bearer)) {
                Ok(()) => {
                    assert_eq!(identity.account(), Some(ACCOUNT));
                    handled("refresh", vec![encode(&frames::link_reply(&negotiation, MAX_PAYLOAD))])
                }
                Err((_, refusal)) => {
                    assert_eq!(identity, account(), "a refused refresh keeps the stream's claims");
                    refused("refresh", &refusal, encode(&frames::link_refused(&negotiation, MAX_PAYLOAD, &refusal)))
                }
            }
        }
        Request::Subscribe { id, target } => {
            match target.and_then(|(channel, _)| identity.authorize(&channel).map(|()| channel)) {
                Ok(_) => handled("subscribe", vec![encode(&frames::subscription_accepted(id, Some(id)))]),
                Err(refusal) => refused("subscribe", &refusal, encode(&frames::subscription_refused(id, &refusal))),
            }
        }
        Request::Unsubscribe { id, channel } => match channel {
            Ok(_) => handled("unsubscribe", vec![encode(&frames::subscription_accepted(id, None))]),
            Err(refusal) => refused("unsubscribe", &refusal, encode(&frames::subscription_refused(id, &refusal))),
        },
        Request::Head { query, from_epoch } => match identity.authorize(&query.channel).and(from_epoch) {
            Ok(from_epoch) => {
                let head = from_epoch.unwrap_or(u64::MAX);
                handled("head", vec![encode(&frames::head_reply(&query.channel, &query.query_id, head))])
            }
            Err(refusal) => {
                let reply = frames::publish_refused(Some(&query.channel), Some(&query.query_id), &refusal);
                refused("head", &refusal, encode(&reply))
            }
        },
        Request::Append(request) => {
            let creating = request.header.content_type == ContentType::GroupInfo;
            match identity.authorize_publish(&request.channel, creating) {
                Ok(()) => append(request),
                Err(refusal) => {
                    let reply = frames::publish_refused(Some(&request.channel), Some(&request.msg_id), &refusal);
                    refused("append", &refusal, encode(&reply))
                }
            }
        }
        Request::Refused(refused_publish) => {
            let reply = frames::publish_refused(
                refused_publish.channel.as_ref(),
                refused_publish.msg_id.as_deref(),
                &refused_publish.refusal,
            );
            refused("append", &refused_publish.refusal, encode(&reply))
        }
    }
}

fn handled(kind: &str, replies: Vec<Bytes>) -> Handled {
    Handled { kind: kind.to_owned(), replies, delivery: None }
}

fn refused(kind: &str, refusal: &Refusal, reply: Bytes) -> Handled {
    Handled { kind: format!("{kind} refused {}", refusal.code), replies: vec![reply], delivery: None }
}

/// The stream identity every input starts with.
fn account() -> StreamIdentity {
    StreamIdentity::from_claims(Claims {
        iss: skytale_auth::ISSUER.to_owned(),
        aud: skytale_auth::AUDIENCE.to_owned(),
        sub: ACCOUNT.to_owned(),
        org: "acme".to_owned(),
        channels: vec!["other/granted/channel".to_owned()],
        iat: 0,
        exp: i64::MAX as u64,
    })
}

fn auth() -> &'static RelayAuth {
    static AUTH: OnceLock<RelayAuth> = OnceLock::new();
    AUTH.get_or_init(|| RelayAuth::jwt(TokenVerifier::from_jwks_json(JWKS).expect("the fuzzing key set")))
}

/// Decodes `frame` with the relay's codec, inside a request body where another frame follows it: whatever the
/// first frame is, it costs only itself, and the next one decodes as sent.
fn decode(frame: &[u8]) -> InFrame {
    let follower =
        pb::Message { message_type: None, metadata: HashMap::from([("next".to_owned(), "frame".to_owned())]) };
    let mut body = BytesMut::new();
    for message in [frame, &follower.encode_to_vec()] {
        body.put_u8(0); // not compressed
        body.put_u32(u32::try_from(message.len()).expect("a fuzz input under 4 GiB"));
        body.put_slice(message);
    }
    let limit = MAX_PAYLOAD + crate::FRAME_OVERHEAD;
    let mut stream = Streaming::new_request(FrameDecoder, OneChunk(Some(body.freeze())), None, Some(limit));
    let first = futures::executor::block_on(stream.message());
    let next = futures::executor::block_on(stream.message());
    if frame.len() > limit {
        // gRPC ends the stream over an oversize frame; nothing of the relay's own handling is reached.
        assert!(first.is_err(), "an oversize frame is refused by the gRPC layer");
        return pb::Message::decode(frame);
    }
    let first = first.expect("a frame within the size limit never fails the stream").expect("a frame was sent");
    assert_eq!(first.is_ok(), pb::Message::decode(frame).is_ok(), "the codec decodes like prost");
    match next {
        Ok(Some(Ok(message))) => assert_eq!(message, follower, "the next frame decodes as sent"),
        other => panic!("the frame after {frame:?} was lost: {other:?}"),
    }
    first
}

/// A request body delivered in one piece.
struct OneChunk(Option<Bytes>);

impl http_body::Body for OneChunk {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.take().map(|data| Ok(Frame::data(data))))
    }
}

/// Encodes a reply, which must read back as the same frame.
fn encode(reply: &pb::Message) -> Bytes {
    let bytes = Bytes::from(reply.encode_to_vec());
    assert_eq!(&pb::Message::decode(bytes.clone()).expect("a reply decodes"), reply);
    bytes
}

/// Checks an accepted publish against everything validation promised, then builds its ack and its delivery (the
/// relay's hand-made encodings) and checks them against prost's.
fn append(request: AppendRequest) -> Handled {
    let AppendRequest { channel, msg_id, header, frame, .. } = request;
    assert!(!msg_id.is_empty() && msg_id.len() <= crate::publish::MAX_MSG_ID_LEN, "msg id {msg_id:?}");
    let publish = pb::Publish::decode(frame.clone()).expect("a stored frame decodes");
    let session = publish.session.as_ref().expect("a stored publish has a session header");
    assert_eq!(session.session_message_type, pb::SessionMessageType::Msg as i32);
    let slim_header = publish.header.as_ref().expect("a stored publish has a header");
    assert_ne!(slim_header.error, Some(true), "a stored publish is no error frame");
    let destination = slim_header.destination.as_ref().expect("a stored publish has a destination");
    assert_eq!(ChannelName::from_slim(destination).ok().as_ref(), Some(&channel));
    let blob = match publish.msg.as_ref().and_then(|m| m.content_type.as_ref()) {
        Some(pb::content::ContentType::AppPayload(payload)) => payload.blob.clone(),
        other => panic!("a stored publish carries an app payload, not {other:?}"),
    };
    assert!(blob.len() <= MAX_PAYLOAD);
    assert_eq!(mls_framing::parse_header(&blob).ok().as_ref(), Some(&header), "the header is the blob's");
    assert!(header.epoch < i64::MAX as u64, "the epoch fits the log");

    let (seq, stored_at) = (header.epoch.wrapping_add(1), 1_700_000_000_000);
    let ack = frames::publish_acked(&frames::ack_head(&channel), &msg_id, seq);
    let ack_metadata = [(meta::MSG_ID, msg_id.clone()), (meta::SEQ, seq.to_string())];
    let expected_ack = pb::Message {
        message_type: Some(MessageType::Publish(pb::Publish::decode(&frames::ack_head(&channel)[..]).expect("ack"))),
        metadata: ack_metadata.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    };
    assert_eq!(pb::Message::decode(ack.clone()).expect("the ack decodes"), expected_ack);

    let (delivery, range) = frames::encode_delivery(&frame, seq, header.epoch, stored_at, &msg_id);
    assert_eq!(&delivery[range], &frame[..], "the delivery holds the stored frame");
    let delivery_metadata = [
        (meta::SEQ, seq.to_string()),
        (meta::EPOCH, header.epoch.to_string()),
        (meta::STORED_AT, stored_at.to_string()),
        (meta::MSG_ID, msg_id),
    ];
    let expected = pb::Message {
        message_type: Some(MessageType::Publish(publish)),
        metadata: delivery_metadata.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    };
    assert_eq!(pb::Message::decode(delivery.clone()).expect("the delivery decodes"), expected);
    Handled {
        kind: "append".to_owned(),
        replies: vec![ack],
        delivery: Some(Delivered { channel, blob, frame: delivery }),
    }
}
