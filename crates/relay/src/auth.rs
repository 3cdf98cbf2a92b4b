//! Who is on the other end of a stream, and what it may use.
//!
//! This is the one place where stream identity is decided: [`identify`] runs once when a stream opens and every
//! subscribe/publish asks [`StreamIdentity::may_use`]. The relay currently runs without authentication (like
//! `--auth none`), so every stream is anonymous and allowed everything; JWT verification (DESIGN §5) plugs in
//! here by adding an identity variant, without touching the stream handling.

use skytale_proto::ChannelName;
use tonic::metadata::MetadataMap;
use tonic::Status;

/// The authenticated party behind a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamIdentity {
    /// No credentials are checked (`--auth none`, local development).
    Anonymous,
}

/// Decides the identity of a new stream from its gRPC request metadata (where `authorization: Bearer` lives).
pub fn identify(_request_metadata: &MetadataMap) -> Result<StreamIdentity, Status> {
    Ok(StreamIdentity::Anonymous)
}

impl StreamIdentity {
    /// Whether this identity may subscribe and publish to `channel`.
    pub fn may_use(&self, _channel: &ChannelName) -> bool {
        match self {
            StreamIdentity::Anonymous => true,
        }
    }
}
