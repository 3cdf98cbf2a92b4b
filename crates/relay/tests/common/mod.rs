//! A raw SLIM client for relay tests: one `OpenChannel` stream on loopback, plus frame builders and readers
//! that follow `docs/protocol.md`. Deliberately not the Skytale client crate, so the relay is tested against the
//! wire protocol itself.
#![allow(dead_code)] // each test binary uses a different subset

pub mod mls_group;
pub mod mls_member;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use prost::Message as _;
use skytale_proto::meta;
use skytale_proto::pb::{self, message::MessageType};
use skytale_proto::ChannelName;
use skytale_relay::{LogStore, LogStreamConfig, NatsServers, Relay, RelayConfig, RelayHandle};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Status, Streaming};

/// Guard against a hung test: no single frame should take anywhere near this long.
const FRAME_WAIT: Duration = Duration::from_secs(60);

/// Chooses the log store of every relay [`config`] makes: unset or `sqlite`, the embedded SQLite log; a
/// `nats://HOST:PORT[,HOST:PORT...]` list, the JetStream log on those servers. `scripts/test.sh` runs the
/// store-agnostic test binaries a second time with it, on one throwaway nats-server from `scripts/nats.sh`.
pub const STORE_VAR: &str = "SKYTALE_TEST_STORE";

/// A relay on loopback port 0 with `data_dir`, on the store [`STORE_VAR`] names.
pub fn config(data_dir: &Path) -> RelayConfig {
    let mut config = RelayConfig::new("127.0.0.1:0".parse().expect("loopback address"), data_dir);
    if let Some(servers) = jetstream_servers() {
        config.store = LogStore::JetStream { servers, stream: test_stream(data_dir) };
    }
    config
}

/// The servers of [`STORE_VAR`], `None` for the SQLite log; panics on any other value, saying what is accepted.
fn jetstream_servers() -> Option<NatsServers> {
    let value = std::env::var(STORE_VAR).ok().filter(|value| !value.is_empty() && value != "sqlite")?;
    if !value.starts_with("nats://") {
        panic!("{STORE_VAR}={value:?}: expected `sqlite` (or unset) or `nats://HOST:PORT[,HOST:PORT...]`");
    }
    let servers = NatsServers::parse(&value).unwrap_or_else(|error| panic!("{STORE_VAR}={value:?}: {error}"));
    Some(servers)
}

/// Whether the relays of this run keep their log on JetStream ([`STORE_VAR`]).
pub fn store_is_jetstream() -> bool {
    jetstream_servers().is_some()
}

/// True, saying so on stderr, when this run is on JetStream and the calling test cannot run there for `reason`:
/// the test then returns at once, so that it never passes without having tested anything unnoticed. The harness
/// names the test's thread after the test, which the line names (`scripts/test.sh` shows it with `--nocapture`).
pub fn skipped_on_jetstream(reason: &str) -> bool {
    let skipped = store_is_jetstream();
    if skipped {
        let test = std::thread::current().name().unwrap_or("a test").to_owned();
        eprintln!("skipped on JetStream: {test}: {reason}");
    }
    skipped
}

/// The log stream of the relays of `data_dir`: one per data directory, as an embedded log is, so a relay
/// restarted on its directory finds its log again while every other test has a log of its own on the one shared
/// server. The name mixes the process id and a per-process random hash of the path; its subjects have their own
/// prefix, as no two streams of a server may share subjects.
fn test_stream(data_dir: &Path) -> LogStreamConfig {
    static PATH_HASH: OnceLock<RandomState> = OnceLock::new();
    let hash = PATH_HASH.get_or_init(RandomState::new).hash_one(data_dir);
    let stream = format!("SKYTALE_TEST_{}_{hash:016x}", std::process::id());
    LogStreamConfig {
        subject_prefix: format!("skytale.test.{stream}."),
        stream,
        replicas: 1,
        ..LogStreamConfig::default()
    }
}

pub async fn start(config: RelayConfig) -> RelayHandle {
    Relay::start(config).await.expect("relay starts")
}

/// One HTTP/2 connection to the relay, for [`Stream::open_on`].
pub async fn connect(relay: SocketAddr) -> tonic::transport::Channel {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{relay}")).expect("relay address");
    endpoint.connect().await.expect("connect to relay")
}

pub fn channel(name: &str) -> ChannelName {
    ChannelName::parse(name).expect("valid channel name")
}

/// Where a subscription starts.
#[derive(Clone, Copy, Debug)]
pub enum From {
    Live,
    Seq(u64),
    Epoch(u64),
}

/// One client stream to the relay.
pub struct Stream {
    /// Encoded frames, so a test can also send bytes that are no `Message` at all.
    outgoing: mpsc::Sender<Vec<u8>>,
    incoming: Streaming<pb::Message>,
}

/// Sends frames as the bytes given; reads the relay's frames as `Message`s.
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = pb::Message;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        prost::bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = pb::Message;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<pb::Message>, Status> {
        pb::Message::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(format!("relay sent an undecodable frame: {e}")))
    }
}

/// Feeds a [`Stream`] from another task.
pub struct FrameSender(mpsc::Sender<Vec<u8>>);

impl FrameSender {
    pub async fn send(&self, frame: pb::Message) {
        self.0.send(frame.encode_to_vec()).await.expect("stream open");
    }
}

impl Stream {
    pub async fn open(relay: SocketAddr) -> Stream {
        Self::open_with(relay, None).await.expect("open channel")
    }

    /// Opens a stream sending `authorization: Bearer <token>` (no header for `None`); returns the relay's
    /// refusal status if it does not accept the stream.
    pub async fn open_with(relay: SocketAddr, token: Option<&str>) -> Result<Stream, tonic::Status> {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{relay}")).expect("relay address");
        let channel = endpoint.connect().await.expect("connect to relay");
        Self::open_on(channel, token).await
    }

    /// Opens an anonymous stream; the reason as text if the connection or the stream is refused.
    pub async fn try_open(relay: SocketAddr) -> Result<Stream, String> {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{relay}")).expect("relay address");
        let channel = endpoint.connect().await.map_err(|error| error.to_string())?;
        Self::open_on(channel, None).await.map_err(|status| status.to_string())
    }

    /// Opens a stream with `token` and extra request headers (a member proof).
    pub async fn open_as(
        relay: SocketAddr,
        token: &str,
        headers: &[(&'static str, String)],
    ) -> Result<Stream, tonic::Status> {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{relay}")).expect("relay address");
        let channel = endpoint.connect().await.expect("connect to relay");
        Self::open_on_with(channel, Some(token), headers).await
    }

    /// Opens a stream on an existing connection (several streams share one HTTP/2 connection this way).
    pub async fn open_on(channel: tonic::transport::Channel, token: Option<&str>) -> Result<Stream, tonic::Status> {
        Self::open_on_with(channel, token, &[]).await
    }

    /// Opens a stream on an existing connection with `token` and extra request headers.
    pub async fn open_on_with(
        channel: tonic::transport::Channel,
        token: Option<&str>,
        headers: &[(&'static str, String)],
    ) -> Result<Stream, tonic::Status> {
        let mut client = tonic::client::Grpc::new(channel);
        client.ready().await.expect("connection ready");
        let (outgoing, queue) = mpsc::channel(1024);
        let mut request = tonic::Request::new(ReceiverStream::new(queue));
        if let Some(token) = token {
            let value = format!("Bearer {token}").parse().expect("ASCII token");
            request.metadata_mut().insert("authorization", value);
        }
        for (name, value) in headers {
            request.metadata_mut().insert(*name, value.parse().expect("ASCII header"));
        }
        let path = PathAndQuery::from_static("/dataplane.proto.v1.DataPlaneService/OpenChannel");
        let incoming = client.streaming(request, path, RawCodec).await?.into_inner();
        Ok(Stream { outgoing, incoming })
    }

    /// A sender that can feed this stream from another task, frames encoded as [`Stream::send`] does.
    pub fn sender(&self) -> FrameSender {
        FrameSender(self.outgoing.clone())
    }

    pub async fn send(&self, frame: pb::Message) {
        self.send_raw(frame.encode_to_vec()).await;
    }

    /// Sends `bytes` as one frame, whatever they are.
    pub async fn send_raw(&self, bytes: Vec<u8>) {
        self.outgoing.send(bytes).await.expect("stream open");
    }

    /// The next frame from the relay; fails the test if the stream ends or errors.
    pub async fn recv(&mut self) -> pb::Message {
        match self.try_recv().await {
            Ok(Some(frame)) => frame,
            Ok(None) => panic!("relay ended the stream"),
            Err(status) => panic!("relay failed the stream: {status}"),
        }
    }

    /// The next frame, `None` at the end of the stream, or the stream's error status.
    pub async fn try_recv(&mut self) -> Result<Option<pb::Message>, tonic::Status> {
        tokio::time::timeout(FRAME_WAIT, self.incoming.message()).await.expect("a frame from the relay in time")
    }

    /// Subscribes and returns the relay's `SubscriptionAck` frame.
    pub async fn subscribe(&mut self, channel: &ChannelName, id: u64, from: From) -> pb::Message {
        self.send(subscribe(channel, id, from)).await;
        let frame = self.recv().await;
        assert_eq!(subscription_ack(&frame).subscription_id, id, "{frame:?}");
        frame
    }

    /// Subscribes and asserts the relay accepted.
    pub async fn subscribe_ok(&mut self, channel: &ChannelName, id: u64, from: From) -> pb::Message {
        let frame = self.subscribe(channel, id, from).await;
        assert!(subscription_ack(&frame).success, "subscription refused: {frame:?}");
        frame
    }

    /// Publishes and returns the relay's reply (ack or error). Only for streams without subscriptions.
    pub async fn publish(&mut self, channel: &ChannelName, msg_id: &str, blob: Vec<u8>) -> pb::Message {
        self.send(publish(channel, msg_id, blob)).await;
        self.recv().await
    }

    /// Publishes and returns the acknowledged sequence number.
    pub async fn publish_ok(&mut self, channel: &ChannelName, msg_id: &str, blob: Vec<u8>) -> u64 {
        let reply = self.publish(channel, msg_id, blob).await;
        assert_eq!(meta(&reply, meta::MSG_ID), Some(msg_id), "{reply:?}");
        ack_seq(&reply)
    }

    /// Publishes every `(msg_id, blob)` pipelined (without waiting for each ack) and returns the acked seqs in
    /// order. Only for streams without subscriptions.
    pub async fn publish_all(&mut self, channel: &ChannelName, messages: Vec<(String, Vec<u8>)>) -> Vec<u64> {
        let count = messages.len();
        let sender = self.sender();
        let target = channel.clone();
        let feeding = tokio::spawn(async move {
            for (msg_id, blob) in messages {
                sender.send(publish(&target, &msg_id, blob)).await;
            }
        });
        let mut seqs = Vec::with_capacity(count);
        for _ in 0..count {
            seqs.push(ack_seq(&self.recv().await));
        }
        feeding.await.expect("publisher task");
        seqs
    }

    /// Receives `n` deliveries, failing on any other frame.
    pub async fn deliveries(&mut self, n: usize) -> Vec<pb::Message> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let frame = self.recv().await;
            assert!(is_delivery(&frame), "expected a delivery, got {frame:?}");
            out.push(frame);
        }
        out
    }
}

/// The head of `channel` on a fresh stream to `relay`.
pub async fn head(relay: SocketAddr, channel: &ChannelName) -> u64 {
    let mut stream = Stream::open(relay).await;
    stream.send(head_query(channel, Some("q"))).await;
    let reply = stream.recv().await;
    meta(&reply, meta::HEAD_SEQ).expect("skytale-head-seq").parse().expect("decimal head")
}

pub fn subscribe(channel: &ChannelName, id: u64, from: From) -> pb::Message {
    let mut metadata = HashMap::new();
    match from {
        From::Live => {}
        From::Seq(seq) => {
            metadata.insert(meta::FROM_SEQ.to_owned(), seq.to_string());
        }
        From::Epoch(epoch) => {
            metadata.insert(meta::FROM_EPOCH.to_owned(), epoch.to_string());
        }
    }
    pb::Message {
        message_type: Some(MessageType::Subscribe(pb::Subscribe {
            header: Some(header(channel)),
            subscription_id: id,
        })),
        metadata,
    }
}

pub fn unsubscribe(channel: &ChannelName, id: u64) -> pb::Message {
    pb::Message {
        message_type: Some(MessageType::Unsubscribe(pb::Unsubscribe {
            header: Some(header(channel)),
            subscription_id: id,
        })),
        metadata: HashMap::new(),
    }
}

pub fn link_negotiation(link_id: &str) -> pb::Message {
    let payload = pb::LinkNegotiationPayload {
        link_id: link_id.to_owned(),
        slim_version: "test".to_owned(),
        is_reply: false,
        connection_type: pb::LinkConnectionType::Edge.into(),
        ..Default::default()
    };
    pb::Message {
        message_type: Some(MessageType::Link(pb::Link {
            link_type: Some(pb::link::LinkType::LinkNegotiation(payload)),
        })),
        metadata: HashMap::new(),
    }
}

/// An in-band token refresh (`docs/protocol.md`, "Authentication and token refresh").
pub fn token_refresh(link_id: &str, token: &str) -> pb::Message {
    let mut frame = link_negotiation(link_id);
    frame.metadata.insert(meta::AUTHORIZATION.to_owned(), format!("Bearer {token}"));
    frame
}

fn header(channel: &ChannelName) -> pb::SlimHeader {
    pb::SlimHeader { source: Some(channel_source()), destination: Some(channel.to_slim()), ..Default::default() }
}

fn channel_source() -> pb::Name {
    ChannelName::parse("skytale/agent/test").expect("valid name").to_slim()
}

/// The `Publish` frame of `docs/protocol.md`; `payload_type` is informational, the relay reads the framing.
pub fn publish_frame(channel: &ChannelName, blob: Vec<u8>) -> pb::Publish {
    pb::Publish {
        header: Some(header(channel)),
        session: Some(pb::SessionHeader {
            session_type: pb::SessionType::Multicast.into(),
            session_message_type: pb::SessionMessageType::Msg.into(),
            ..Default::default()
        }),
        msg: Some(pb::Content {
            content_type: Some(pb::content::ContentType::AppPayload(pb::ApplicationPayload {
                payload_type: meta::payload_type::APPLICATION.to_owned(),
                blob,
            })),
        }),
    }
}

pub fn publish(channel: &ChannelName, msg_id: &str, blob: Vec<u8>) -> pb::Message {
    pb::Message {
        message_type: Some(MessageType::Publish(publish_frame(channel, blob))),
        metadata: HashMap::from([(meta::MSG_ID.to_owned(), msg_id.to_owned())]),
    }
}

/// A head query: a `Publish` with `SESSION_MESSAGE_TYPE_PING`, no content, `skytale-msg-id` = `query_id`.
pub fn head_query(channel: &ChannelName, query_id: Option<&str>) -> pb::Message {
    let publish = pb::Publish {
        header: Some(pb::SlimHeader { destination: Some(channel.to_slim()), ..Default::default() }),
        session: Some(pb::SessionHeader {
            session_type: pb::SessionType::Multicast.into(),
            session_message_type: pb::SessionMessageType::Ping.into(),
            ..Default::default()
        }),
        msg: None,
    };
    let metadata = query_id.map(|id| HashMap::from([(meta::MSG_ID.to_owned(), id.to_owned())])).unwrap_or_default();
    pb::Message { message_type: Some(MessageType::Publish(publish)), metadata }
}

pub fn meta<'a>(frame: &'a pb::Message, key: &str) -> Option<&'a str> {
    frame.metadata.get(key).map(String::as_str)
}

fn number(frame: &pb::Message, key: &str) -> u64 {
    meta(frame, key).unwrap_or_else(|| panic!("{key} missing in {frame:?}")).parse().expect("decimal metadata")
}

pub fn seq(frame: &pb::Message) -> u64 {
    number(frame, meta::SEQ)
}

pub fn epoch(frame: &pb::Message) -> u64 {
    number(frame, meta::EPOCH)
}

pub fn as_publish(frame: &pb::Message) -> &pb::Publish {
    match &frame.message_type {
        Some(MessageType::Publish(publish)) => publish,
        other => panic!("expected a publish frame, got {other:?}"),
    }
}

pub fn subscription_ack(frame: &pb::Message) -> &pb::SubscriptionAck {
    match &frame.message_type {
        Some(MessageType::SubscriptionAck(ack)) => ack,
        other => panic!("expected a subscription ack, got {other:?}"),
    }
}

fn session_type(frame: &pb::Message) -> Option<pb::SessionMessageType> {
    match &frame.message_type {
        Some(MessageType::Publish(publish)) => {
            publish.session.as_ref().and_then(|s| pb::SessionMessageType::try_from(s.session_message_type).ok())
        }
        _ => None,
    }
}

/// A delivered message (as opposed to an ack or error frame).
pub fn is_delivery(frame: &pb::Message) -> bool {
    session_type(frame) == Some(pb::SessionMessageType::Msg)
}

pub fn is_error(frame: &pb::Message) -> bool {
    matches!(&frame.message_type, Some(MessageType::Publish(p))
        if p.header.as_ref().and_then(|h| h.error) == Some(true))
}

/// The seq of a successful publish ack.
pub fn ack_seq(frame: &pb::Message) -> u64 {
    assert_eq!(session_type(frame), Some(pb::SessionMessageType::MsgAck), "{frame:?}");
    assert!(!is_error(frame), "publish refused: {frame:?}");
    seq(frame)
}

/// The error code of an error frame.
pub fn error_code(frame: &pb::Message) -> &str {
    assert!(is_error(frame), "expected an error frame, got {frame:?}");
    meta(frame, meta::ERROR_CODE).expect("error code")
}

pub fn blob(frame: &pb::Message) -> &[u8] {
    match as_publish(frame).msg.as_ref().and_then(|m| m.content_type.as_ref()) {
        Some(pb::content::ContentType::AppPayload(payload)) => &payload.blob,
        other => panic!("expected an app payload, got {other:?}"),
    }
}

/// The channel a delivery or ack is about.
pub fn destination(frame: &pb::Message) -> ChannelName {
    let name = as_publish(frame).header.as_ref().and_then(|h| h.destination.as_ref()).expect("destination");
    ChannelName::from_slim(name).expect("valid destination")
}
