//! A bare SLIM client stream (`DataPlaneService/OpenChannel`) speaking `docs/protocol.md` directly, without the
//! client crate's MLS and state: the relay benchmarks need to put load on the relay, not on a client.

use std::collections::HashMap;

use anyhow::{bail, Context};
use skytale_proto::pb::{self, content, data_plane_service_client::DataPlaneServiceClient, link, message};
use skytale_proto::{meta, ChannelName};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::Streaming;

/// Frames a stream may have queued towards the relay before its sender waits.
const OUTGOING_QUEUE: usize = 1024;

/// One open stream: frames to the relay go into `outgoing`, frames from it come out of `incoming`.
pub struct SlimStream {
    pub outgoing: mpsc::Sender<pb::Message>,
    pub incoming: Streaming<pb::Message>,
}

/// Opens one HTTP/2 connection to the relay at `url`.
pub async fn connect(url: &str) -> anyhow::Result<Channel> {
    Endpoint::from_shared(url.to_owned())?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("connecting to the relay at {url}"))
}

impl SlimStream {
    /// Opens a stream on `connection` and completes the link negotiation, as a client does first.
    pub async fn open(connection: Channel) -> anyhow::Result<Self> {
        let (outgoing, requests) = mpsc::channel(OUTGOING_QUEUE);
        outgoing.send(link_negotiation()).await?;
        let mut incoming = DataPlaneServiceClient::new(connection)
            .max_decoding_message_size(usize::MAX)
            .open_channel(ReceiverStream::new(requests))
            .await
            .context("opening a stream")?
            .into_inner();
        match incoming.message().await?.and_then(|m| m.message_type) {
            Some(message::MessageType::Link(_)) => Ok(Self { outgoing, incoming }),
            other => bail!("expected the link negotiation reply, got {other:?}"),
        }
    }

    /// Subscribes to `channel` for live messages and waits for the relay's acknowledgement.
    pub async fn subscribe(&mut self, channel: &ChannelName, subscription_id: u64) -> anyhow::Result<()> {
        let subscribe = pb::Subscribe { header: Some(header(channel)), subscription_id };
        self.outgoing.send(frame(message::MessageType::Subscribe(subscribe), HashMap::new())).await?;
        match self.incoming.message().await?.and_then(|m| m.message_type) {
            Some(message::MessageType::SubscriptionAck(ack)) if ack.success => Ok(()),
            other => bail!("subscribing to {channel}: expected a successful SubscriptionAck, got {other:?}"),
        }
    }
}

fn frame(kind: message::MessageType, metadata: HashMap<String, String>) -> pb::Message {
    pb::Message { message_type: Some(kind), metadata }
}

fn link_negotiation() -> pb::Message {
    let payload = pb::LinkNegotiationPayload {
        link_id: "skytale-bench".to_owned(),
        slim_version: "skytale-1".to_owned(),
        is_reply: false,
        connection_type: pb::LinkConnectionType::Edge as i32,
        ..Default::default()
    };
    let link = pb::Link { link_type: Some(link::LinkType::LinkNegotiation(payload)) };
    frame(message::MessageType::Link(link), HashMap::new())
}

fn header(channel: &ChannelName) -> pb::SlimHeader {
    let source = ChannelName::parse("skytale/agent/bench").expect("valid name");
    pb::SlimHeader { source: Some(source.to_slim()), destination: Some(channel.to_slim()), ..Default::default() }
}

/// A publish of the application message `blob` to `channel` with idempotency id `msg_id`, as the client crate
/// builds it.
pub fn publish(channel: &ChannelName, blob: Vec<u8>, msg_id: String) -> pb::Message {
    publish_as(channel, meta::payload_type::APPLICATION, blob, msg_id)
}

/// A publish of `blob`, an MLS message of the kind `payload_type` names (`meta::payload_type`).
pub fn publish_as(channel: &ChannelName, payload_type: &str, blob: Vec<u8>, msg_id: String) -> pb::Message {
    let publish = pb::Publish {
        header: Some(header(channel)),
        session: Some(pb::SessionHeader {
            session_type: pb::SessionType::Multicast as i32,
            session_message_type: pb::SessionMessageType::Msg as i32,
            ..Default::default()
        }),
        msg: Some(pb::Content {
            content_type: Some(content::ContentType::AppPayload(pb::ApplicationPayload {
                payload_type: payload_type.to_owned(),
                blob,
            })),
        }),
    };
    frame(message::MessageType::Publish(publish), HashMap::from([(meta::MSG_ID.to_owned(), msg_id)]))
}

/// An MLS PrivateMessage application message of `len` bytes (one less where the size prefixes make `len`
/// impossible; RFC 9420 §6.3) for `group_id` at `epoch`: the clear-text framing the relay reads, followed by
/// `fill`-derived bytes standing in for the encrypted sender data and ciphertext, which the relay never opens.
pub fn private_message(group_id: &[u8], epoch: u64, len: usize, fill: u64) -> anyhow::Result<Vec<u8>> {
    const SENDER_DATA: usize = 32;
    let mut blob = vec![0, 1, 0, 2]; // mls10, mls_private_message
    push_vector(&mut blob, group_id)?;
    blob.extend(epoch.to_be_bytes());
    blob.push(1); // application
    push_vector(&mut blob, &[])?; // authenticated_data
    let opaque = opaque_bytes(fill, len);
    push_vector(&mut blob, &opaque[..SENDER_DATA])?;
    let room = len.saturating_sub(blob.len());
    let ciphertext_len = room.saturating_sub(prefix_len(room));
    if ciphertext_len == 0 {
        bail!("a PrivateMessage for this group needs more than {len} bytes");
    }
    push_vector(&mut blob, &opaque[SENDER_DATA..SENDER_DATA + ciphertext_len])?;
    Ok(blob)
}

/// An MLS PublicMessage commit of `len` bytes for `group_id` at `epoch`, sent by the member at leaf `sender`:
/// the clear-text framing the relay reads (RFC 9420 §6.2), followed by `fill`-derived bytes standing in for the
/// commit's content, signature and membership tag, which a relay with `--auth none` does not check.
pub fn public_commit(group_id: &[u8], epoch: u64, sender: u32, len: usize, fill: u64) -> anyhow::Result<Vec<u8>> {
    let mut blob = vec![0, 1, 0, 1]; // mls10, mls_public_message
    push_vector(&mut blob, group_id)?;
    blob.extend(epoch.to_be_bytes());
    blob.push(1); // sender_type member
    blob.extend(sender.to_be_bytes());
    push_vector(&mut blob, &[])?; // authenticated_data
    blob.push(3); // commit
    if blob.len() >= len {
        bail!("a commit for this group needs more than {len} bytes");
    }
    blob.extend(opaque_bytes(fill, len - blob.len()));
    Ok(blob)
}

/// `len` bytes derived from `fill`: distinct messages without a random number generator.
fn opaque_bytes(fill: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (fill.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_mul(0x2545_F491_4F6C_DD1D)).to_be_bytes()[0])
        .collect()
}

/// Size of the shortest RFC 9420 §2.1.2 length prefix for a vector of `len` bytes.
fn prefix_len(len: usize) -> usize {
    match len {
        0..=63 => 1,
        64..=16_383 => 2,
        _ => 4,
    }
}

/// Appends `bytes` with its shortest RFC 9420 §2.1.2 length prefix.
fn push_vector(out: &mut Vec<u8>, bytes: &[u8]) -> anyhow::Result<()> {
    let len = bytes.len();
    match len {
        0..=63 => out.push(len as u8),
        64..=16_383 => out.extend(((len as u16) | 0x4000).to_be_bytes()),
        16_384..=0x3FFF_FFFF => out.extend(((len as u32) | 0x8000_0000).to_be_bytes()),
        _ => bail!("vector of {len} bytes is too long for MLS"),
    }
    out.extend_from_slice(bytes);
    Ok(())
}

/// What a frame from the relay is, to a stream that publishes and subscribes.
pub enum Received {
    /// A publish's acknowledgement: it is stored.
    Ack,
    /// A publish refused, with its `skytale-error-code` and `skytale-error`.
    Refused { code: String, reason: String },
    /// A message of a subscribed channel.
    Delivery,
}

/// Tells an ack from a refusal and a delivery; any other frame is an error naming it.
pub fn classify(frame: &pb::Message) -> anyhow::Result<Received> {
    let Some(message::MessageType::Publish(publish)) = &frame.message_type else {
        bail!("unexpected frame from the relay: {:?}", frame.message_type);
    };
    if publish.header.as_ref().and_then(|h| h.error).unwrap_or(false) {
        let field = |key| frame.metadata.get(key).cloned().unwrap_or_default();
        return Ok(Received::Refused { code: field(meta::ERROR_CODE), reason: field(meta::ERROR) });
    }
    let is_ack =
        publish.session.as_ref().is_some_and(|s| s.session_message_type == pb::SessionMessageType::MsgAck as i32);
    Ok(if is_ack { Received::Ack } else { Received::Delivery })
}

/// The MLS message a delivery carries.
pub fn delivered_blob(frame: &pb::Message) -> Option<&[u8]> {
    match &frame.message_type {
        Some(message::MessageType::Publish(pb::Publish { msg: Some(content), .. })) => match &content.content_type {
            Some(content::ContentType::AppPayload(payload)) => Some(&payload.blob),
            _ => None,
        },
        _ => None,
    }
}
