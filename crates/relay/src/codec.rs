//! The relay's gRPC codec: frames going out are either messages built for one stream (replies, acks) or bytes
//! encoded once and shared (a delivery is the same bytes for every subscriber), so fan-out costs a reference
//! count and a copy into the connection's buffer instead of a deep clone and an encode per subscriber.

use bytes::{BufMut, Bytes};
use prost::Message as _;
use skytale_proto::pb;
use tonic::codec::{BufferSettings, Codec, EncodeBuf, Encoder};
use tonic::Status;
use tonic_prost::ProstDecoder;

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

/// Decodes `pb::Message` as tonic-prost does; encodes [`OutFrame`]s.
#[derive(Default)]
pub struct RelayCodec;

impl Codec for RelayCodec {
    type Encode = OutFrame;
    type Decode = pb::Message;
    type Encoder = FrameEncoder;
    type Decoder = ProstDecoder<pb::Message>;

    fn encoder(&mut self) -> Self::Encoder {
        FrameEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(buffer_settings())
    }
}

fn buffer_settings() -> BufferSettings {
    BufferSettings::new(STREAM_BUFFER, YIELD_THRESHOLD)
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
