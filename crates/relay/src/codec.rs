//! The relay's side of gRPC framing. Frames coming in are decoded one by one, and a frame that does not decode is
//! reported as that frame's problem rather than the stream's. Frames going out are written by
//! [`OutboundBody`], the stream's HTTP/2 response body, without copying what is shared: a delivery is the same
//! bytes for every subscriber, and a large one reaches HTTP/2 as those very bytes (a reference count per
//! subscriber), where tonic's encoder would copy it into each stream's buffer: 1 000 subscribers that do not read
//! then held 1 000 copies of a 1 MiB message.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body::{Body, Frame};
use prost::{DecodeError, Message as _};
use skytale_proto::pb;
use tokio::sync::mpsc;
use tonic::codec::{BufferSettings, DecodeBuf, Decoder};
use tonic::codegen::http;
use tonic::Status;

use crate::inflight::Grant;

/// Initial size of each stream's decode buffer; it grows with the traffic. Small because every idle stream holds
/// one (tonic's default is 8 KiB). The outbound buffer starts empty and grows when there is something to send.
const STREAM_BUFFER: usize = 1024;
/// Encoded bytes gathered before they are handed to HTTP/2 (tonic's default; also the decoder's yield setting,
/// which tonic requires but only encoders use).
const YIELD_THRESHOLD: usize = 32 * 1024;
/// A delivery at least this large goes to HTTP/2 as the shared bytes themselves; a smaller one is copied into
/// the stream's buffer with its neighbours, so small messages still make few HTTP/2 frames.
const SHARE_FROM: usize = 16 * 1024;
/// gRPC's length prefix: a compression flag and a big-endian length.
const GRPC_HEADER: usize = 5;

/// One frame for a stream's outbound queue.
pub enum OutFrame {
    /// Built for this stream only. Boxed: queue slots stay small for streams that never send anything else.
    Message(Box<pb::Message>),
    /// A complete `Message` encoding (an ack).
    Encoded(Bytes),
    /// A delivery: a complete `Message` encoding shared by every subscriber, and the in-flight budget it holds
    /// until it is written to the socket (`inflight`). The grant is boxed so that every queue slot stays as small
    /// as the other variants make it: a stream's queue allocates its slots in blocks.
    Delivery(Bytes, Box<Grant>),
}

impl From<pb::Message> for OutFrame {
    fn from(message: pb::Message) -> Self {
        OutFrame::Message(Box::new(message))
    }
}

/// One frame from a client: the message, or why its bytes are not one.
pub type InFrame = Result<pb::Message, DecodeError>;

/// Hands every frame on, decoded or not. An error from a tonic decoder ends the whole stream (and every
/// subscription on it), so a frame that is not a valid `Message` (a SLIM payload this proto reads another way, a
/// truncated field) is returned as a value for the session to refuse, and the next frame is read as usual.
pub struct FrameDecoder;

impl Decoder for FrameDecoder {
    type Item = InFrame;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<InFrame>, Status> {
        let frame = pb::Message::decode(&mut *src);
        // `src` holds exactly this frame's bytes; a failed decode may stop inside it, and what it left unread
        // must not be taken for the start of the next frame.
        src.advance(src.remaining());
        Ok(Some(frame))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::new(STREAM_BUFFER, YIELD_THRESHOLD)
    }
}

/// A stream's response body: its outbound queue as gRPC messages, then the trailers with the stream's status (the
/// first error in the queue, or OK once the queue is closed).
pub struct OutboundBody {
    queue: mpsc::Receiver<Result<OutFrame, Status>>,
    /// Frames gathered for the next chunk.
    buf: BytesMut,
    /// The budget held by the deliveries copied into `buf`, given back once the chunk is written.
    buf_grant: Option<Grant>,
    /// A large delivery that goes right after `buf` (which ends with its gRPC header).
    shared: Option<Bytes>,
    /// The stream's status, sent once everything before it went.
    end: Option<Status>,
    finished: bool,
}

impl OutboundBody {
    pub fn new(queue: mpsc::Receiver<Result<OutFrame, Status>>) -> Self {
        Self { queue, buf: BytesMut::new(), buf_grant: None, shared: None, end: None, finished: false }
    }

    fn put_header(&mut self, len: usize) -> Result<(), Status> {
        let len = u32::try_from(len)
            .map_err(|_| Status::internal(format!("a frame of {len} bytes is too large for gRPC")))?;
        self.buf.reserve(GRPC_HEADER);
        self.buf.put_u8(0);
        self.buf.put_u32(len);
        Ok(())
    }

    /// Adds `frame` to the next chunk. Returns true when the chunk should go now.
    fn gather(&mut self, frame: OutFrame) -> Result<bool, Status> {
        match frame {
            OutFrame::Message(message) => {
                self.put_header(message.encoded_len())?;
                message.encode(&mut self.buf).map_err(|e| Status::internal(format!("encoding a frame: {e}")))?;
            }
            OutFrame::Encoded(bytes) => {
                self.put_header(bytes.len())?;
                self.buf.extend_from_slice(&bytes);
            }
            OutFrame::Delivery(bytes, grant) if bytes.len() < SHARE_FROM => {
                self.put_header(bytes.len())?;
                self.buf.extend_from_slice(&bytes);
                match &mut self.buf_grant {
                    Some(held) => held.merge(*grant),
                    None => self.buf_grant = Some(*grant),
                }
            }
            OutFrame::Delivery(bytes, grant) => {
                self.put_header(bytes.len())?;
                self.shared = Some((*grant).attach(bytes));
                return Ok(true);
            }
        }
        Ok(self.buf.len() >= YIELD_THRESHOLD)
    }

    /// The gathered frames as one chunk, holding their deliveries' budget.
    fn chunk(&mut self) -> Frame<Bytes> {
        let chunk = self.buf.split().freeze();
        Frame::data(match self.buf_grant.take() {
            Some(grant) => grant.attach(chunk),
            None => chunk,
        })
    }
}

impl Body for OutboundBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if let Some(shared) = this.shared.take() {
            return Poll::Ready(Some(Ok(Frame::data(shared))));
        }
        if this.finished {
            return Poll::Ready(None);
        }
        let status = match this.end.take() {
            Some(status) => status,
            None => loop {
                match this.queue.poll_recv(cx) {
                    Poll::Ready(Some(Ok(frame))) => match this.gather(frame) {
                        Ok(false) => {}
                        Ok(true) => return Poll::Ready(Some(Ok(this.chunk()))),
                        Err(status) => break status,
                    },
                    Poll::Ready(Some(Err(status))) => break status,
                    Poll::Ready(None) => break Status::ok(""),
                    Poll::Pending if this.buf.is_empty() => return Poll::Pending,
                    Poll::Pending => return Poll::Ready(Some(Ok(this.chunk()))),
                }
            },
        };
        if !this.buf.is_empty() {
            // What was gathered before the end goes first.
            this.end = Some(status);
            return Poll::Ready(Some(Ok(this.chunk())));
        }
        this.finished = true;
        let mut trailers = http::HeaderMap::new();
        Poll::Ready(Some(status.add_header(&mut trailers).map(|()| Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.finished && self.shared.is_none()
    }
}
