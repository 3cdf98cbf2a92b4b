//! Reads one client frame into the request it makes, checked as far as the frame alone allows: its kind, names,
//! ids, resume positions and (for a publish, with [`publish`]) size and MLS framing. What needs the stream's
//! identity, the log or the channel feeds is left to the session, which acts on the [`Request`]. Pure, so the
//! fuzz targets (`fuzz/`) run exactly this code on arbitrary bytes.

use std::collections::HashMap;

use skytale_proto::meta::{self, error_code};
use skytale_proto::pb::{self, message::MessageType};
use skytale_proto::ChannelName;

use crate::codec::InFrame;
use crate::frames::Refusal;
use crate::log::AppendRequest;
use crate::publish::{self, HeadQuery, RefusedPublish};
use crate::subscription::StartPoint;

/// What a client frame asks the relay to do.
#[derive(Debug)]
pub enum Request {
    /// Link negotiation: at stream open, or an in-band token refresh when `bearer` (the value of
    /// `skytale-authorization`) is given.
    Link { negotiation: pb::LinkNegotiationPayload, bearer: Option<String> },
    /// Subscribe `id` to a channel from a start point, or the refusal its `SubscriptionAck` carries.
    Subscribe { id: u64, target: Result<(ChannelName, StartPoint), Refusal> },
    /// Unsubscribe `id` from a channel, or the refusal its `SubscriptionAck` carries.
    Unsubscribe { id: u64, channel: Result<ChannelName, Refusal> },
    /// A head query, with its `skytale-from-epoch` (checked only once the stream may read the channel).
    Head { query: HeadQuery, from_epoch: Result<Option<u64>, Refusal> },
    /// A publish ready for the log writer (once the stream may write the channel).
    Append(AppendRequest),
    /// A frame refused as it stands, answered with an error frame echoing what it had valid.
    Refused(RefusedPublish),
}

/// Reads `frame` (decoded or not) as a request; `max_payload` is the relay's limit on an MLS message.
pub fn read(frame: InFrame, max_payload: usize) -> Request {
    let pb::Message { message_type, metadata } = match frame {
        Ok(message) => message,
        Err(error) => return refused(format!("undecodable frame, skipped: {error}")),
    };
    match message_type {
        Some(MessageType::Link(pb::Link { link_type: Some(pb::link::LinkType::LinkNegotiation(negotiation)) })) => {
            Request::Link { negotiation, bearer: metadata.get(meta::AUTHORIZATION).cloned() }
        }
        Some(MessageType::Subscribe(subscribe)) => {
            let destination = subscribe.header.as_ref().and_then(|h| h.destination.as_ref());
            let target = match (channel_of(destination), start_point(&metadata)) {
                (Err(refusal), _) | (_, Err(refusal)) => Err(refusal),
                (Ok(channel), Ok(start)) => Ok((channel, start)),
            };
            Request::Subscribe { id: subscribe.subscription_id, target }
        }
        Some(MessageType::Unsubscribe(unsubscribe)) => Request::Unsubscribe {
            id: unsubscribe.subscription_id,
            channel: channel_of(unsubscribe.header.as_ref().and_then(|h| h.destination.as_ref())),
        },
        Some(MessageType::Publish(publish)) if publish::is_head_query(&publish) => {
            match publish::validate_head_query(&publish, &metadata) {
                Ok(query) => Request::Head { query, from_epoch: head_query_epoch(&metadata) },
                Err(refused) => Request::Refused(refused),
            }
        }
        Some(MessageType::Publish(publish)) => match publish::validate(publish, &metadata, max_payload) {
            Ok(request) => Request::Append(request),
            Err(refused) => Request::Refused(refused),
        },
        Some(MessageType::Link(_)) | Some(MessageType::SubscriptionAck(_)) | None => {
            refused("unexpected frame: the relay accepts link negotiation, subscribe, unsubscribe and publish".into())
        }
    }
}

/// A `bad_request` for a frame with nothing the client could match the error to.
fn refused(message: String) -> Request {
    Request::Refused(RefusedPublish {
        channel: None,
        msg_id: None,
        refusal: Refusal::new(error_code::BAD_REQUEST, message),
    })
}

/// Reads the channel name a frame is addressed to.
fn channel_of(destination: Option<&pb::Name>) -> Result<ChannelName, Refusal> {
    let destination =
        destination.ok_or_else(|| Refusal::new(error_code::BAD_REQUEST, "frame without a destination channel"))?;
    ChannelName::from_slim(destination)
        .map_err(|e| Refusal::new(error_code::BAD_REQUEST, format!("bad destination: {e}")))
}

/// Reads the optional `skytale-from-epoch` of a head query (`skytale-from-seq` has no meaning there).
fn head_query_epoch(metadata: &HashMap<String, String>) -> Result<Option<u64>, Refusal> {
    match start_point(metadata)? {
        StartPoint::Live => Ok(None),
        StartPoint::Epoch(epoch) => Ok(Some(epoch)),
        StartPoint::Seq(_) => {
            Err(Refusal::new(error_code::BAD_REQUEST, format!("a head query takes {} only", meta::FROM_EPOCH)))
        }
    }
}

/// Reads `skytale-from-seq` / `skytale-from-epoch` (at most one of them).
fn start_point(metadata: &HashMap<String, String>) -> Result<StartPoint, Refusal> {
    let number = |key: &str| -> Result<Option<u64>, Refusal> {
        metadata
            .get(key)
            .map(|value| {
                value.parse::<u64>().map_err(|_| {
                    Refusal::new(error_code::BAD_REQUEST, format!("{key} must be a decimal number, got {value:?}"))
                })
            })
            .transpose()
    };
    match (number(meta::FROM_SEQ)?, number(meta::FROM_EPOCH)?) {
        (Some(_), Some(_)) => Err(Refusal::new(
            error_code::BAD_REQUEST,
            format!("give {} or {}, not both", meta::FROM_SEQ, meta::FROM_EPOCH),
        )),
        (Some(seq), None) => Ok(StartPoint::Seq(seq)),
        (None, Some(epoch)) => Ok(StartPoint::Epoch(epoch)),
        (None, None) => Ok(StartPoint::Live),
    }
}
