//! The relay's gRPC codec: frames going out are either messages built for one stream (replies, acks) or bytes
//! encoded once and shared (a delivery is the same bytes for every subscriber), so fan-out costs a reference
//! count and a copy into the connection's buffer instead of a deep clone and an encode per subscriber. Frames
//! coming in are decoded one by one, and a frame that does not decode is reported as that frame's problem
//! rather than the stream's.

use bytes::{Buf, BufMut, Bytes};
use prost::{DecodeError, Message as _};
use skytale_proto::pb;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

/// Initial size of each stream's encode and decode buffers; they grow with the traffic. Small because every
/// idle stream holds both (tonic's default is 8 KiB each).
const STREAM_BUFFER: usize = 1024;
/// Encoded bytes gathered before they are handed to HTTP/2 (tonic's default).
const YIELD_THRESHOLD: usize = 32 * 1024;

/// One frame for a stream's outbound queue.
pub enum OutFrame {
    /// Built for this stream only. Boxed: queue slots stay small for streams that never send anything else.
    Message(Box<pb::Message>),
    /// A complete `Message` encoding, shared between streams.
    Encoded(Bytes),
}

impl From<pb::Message> for OutFrame {
    fn from(message: pb::Message) -> Self {
        OutFrame::Message(Box::new(message))
    }
}

/// One frame from a client: the message, or why its bytes are not one.
pub type InFrame = Result<pb::Message, DecodeError>;

/// Decodes [`InFrame`]s; encodes [`OutFrame`]s.
#[derive(Default)]
pub struct RelayCodec;

impl Codec for RelayCodec {
    type Encode = OutFrame;
    type Decode = InFrame;
    type Encoder = FrameEncoder;
    type Decoder = FrameDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        FrameEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        FrameDecoder
    }
}

fn buffer_settings() -> BufferSettings {
    BufferSettings::new(STREAM_BUFFER, YIELD_THRESHOLD)
}

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
        buffer_settings()
    }
}

pub struct FrameEncoder;

impl Encoder for FrameEncoder {
    type Item = OutFrame;
    type Error = Status;

    fn encode(&mut self, item: OutFrame, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        match item {
            OutFrame::Message(message) => {
                message.encode(dst).map_err(|e| Status::internal(format!("encoding a frame: {e}")))
            }
            OutFrame::Encoded(bytes) => {
                dst.put_slice(&bytes);
                Ok(())
            }
        }
    }

    fn buffer_settings(&self) -> BufferSettings {
        buffer_settings()
    }
}
