//! What a draining relay tells its clients (docs/operations.md, "Graceful drain"). Once
//! [`RelayHandle::shutdown`](crate::RelayHandle::shutdown) begins, each open stream stops reading, writes every
//! reply it owes (the acks of the publishes it already handed to the log writer), then ends with the `draining`
//! notice; a stream opened meanwhile is refused with it. The notice is gRPC status `UNAVAILABLE` carrying
//! `skytale-error-code: draining` in its trailers, preceded on an open stream by the usual error frame with that
//! code (as every end the relay decides on, `stream_guard`), so that a client reading frames only learns it too.
//! Clients take it as "reconnect", not as a failure.

use skytale_proto::meta::{error_code, ERROR_CODE};
use tonic::metadata::MetadataValue;
use tonic::Status;

use crate::frames::Refusal;
use crate::stream_guard::StreamEnd;

const MESSAGE: &str = "the relay is shutting down (draining): every publish it read from this stream was \
                       answered; reconnect and send again those that were not";

/// The end of an open stream: the error frame, then [`status`].
pub fn notice() -> StreamEnd {
    StreamEnd { refusal: Refusal::new(error_code::DRAINING, MESSAGE), status: status() }
}

/// `UNAVAILABLE` with the `draining` code: what ends an open stream, and what a stream opened during the drain gets.
pub fn status() -> Status {
    let mut status = Status::unavailable(MESSAGE);
    status.metadata_mut().insert(ERROR_CODE, MetadataValue::from_static(error_code::DRAINING));
    status
}
