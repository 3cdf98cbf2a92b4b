//! Turns an incoming `Publish` frame into an [`AppendRequest`], or into the refusal the client gets instead.
//! Everything that can be decided without the log (names, ids, size, MLS framing) is checked here, before the
//! request reaches the writer.

use std::collections::HashMap;

use prost::Message as _;
use skytale_proto::meta::{self, error_code};
use skytale_proto::pb::{self, content::ContentType as PayloadKind};
use skytale_proto::ChannelName;

use crate::frames::Refusal;
use crate::log::AppendRequest;
use crate::mls_framing::{self, ContentType};

/// Longest accepted idempotency id, in bytes.
pub const MAX_MSG_ID_LEN: usize = 64;

/// Epochs are stored as SQLite integers; a (malicious) epoch at or above this cannot be, and no real group
/// ever gets there.
const MAX_EPOCH: u64 = i64::MAX as u64;

/// A publish the relay will not append, with whatever the frame said that lets the client match the error.
#[derive(Debug)]
pub struct RefusedPublish {
    pub channel: Option<ChannelName>,
    pub msg_id: Option<String>,
    pub refusal: Refusal,
}

/// A valid head query: which channel, and the id its answer echoes.
#[derive(Debug)]
pub struct HeadQuery {
    pub channel: ChannelName,
    pub query_id: String,
}

/// Whether `publish` is a head query (`SESSION_MESSAGE_TYPE_PING`) rather than a message to store.
pub fn is_head_query(publish: &pb::Publish) -> bool {
    publish.session.as_ref().is_some_and(|s| s.session_message_type == pb::SessionMessageType::Ping as i32)
}

/// Validates a head query: a destination channel and a `skytale-msg-id` like a publish's, no content needed.
pub fn validate_head_query(
    publish: &pb::Publish,
    metadata: &HashMap<String, String>,
) -> Result<HeadQuery, RefusedPublish> {
    let (channel, query_id) = channel_and_id(publish, metadata)?;
    Ok(HeadQuery { channel, query_id })
}

/// Validates `publish` (with the frame's `metadata`) against the wire protocol and the payload limit. Who sends
/// it (`sender`, `creator`) is the session's to fill in.
pub fn validate(
    publish: pb::Publish,
    metadata: &HashMap<String, String>,
    max_payload: usize,
) -> Result<AppendRequest, RefusedPublish> {
    let (channel, id) = channel_and_id(&publish, metadata)?;
    let refuse = |code, message: String| RefusedPublish {
        channel: Some(channel.clone()),
        msg_id: Some(id.clone()),
        refusal: Refusal::new(code, message),
    };
    relay_fields_unset(&publish).map_err(|message| refuse(error_code::BAD_REQUEST, message))?;
    let Some(blob) = mls_message(&publish) else {
        return Err(refuse(error_code::BAD_REQUEST, "publish without app_payload".into()));
    };
    if blob.len() > max_payload {
        let message = format!("payload of {} bytes exceeds the relay's limit of {max_payload} bytes", blob.len());
        return Err(refuse(error_code::PAYLOAD_TOO_LARGE, message));
    }
    let header = match mls_framing::parse_header(blob) {
        Ok(header) if header.epoch < MAX_EPOCH => header,
        Ok(header) => {
            let message = format!("epoch {} is out of range", header.epoch);
            return Err(refuse(error_code::BAD_MESSAGE, message));
        }
        Err(e) => {
            let message = format!("not an MLS PublicMessage or PrivateMessage: {e}");
            return Err(refuse(error_code::BAD_MESSAGE, message));
        }
    };
    // Application messages (nearly all traffic) are never parsed beyond their framing, so only handshakes are
    // copied out for validation.
    let handshake = (header.content_type != ContentType::Application).then(|| blob.to_vec());
    Ok(AppendRequest {
        channel,
        msg_id: id,
        header,
        // Encoded here, on the stream's task, so the single log writer only copies bytes.
        frame: publish.encode_to_vec().into(),
        size: blob.len(),
        handshake,
        sender: None,
        creator: None,
    })
}

/// The MLS message a `Publish` frame carries (its `app_payload`), if it carries one.
pub fn mls_message(publish: &pb::Publish) -> Option<&[u8]> {
    match publish.msg.as_ref().and_then(|m| m.content_type.as_ref()) {
        Some(PayloadKind::AppPayload(payload)) => Some(&payload.blob),
        _ => None,
    }
}

/// Refuses a publish that sets what only the relay may set (docs/protocol.md, "Publish"). The frame is stored as
/// sent and delivered to every subscriber, and these are the fields a subscriber reads to tell a delivery from
/// an ack or an error; so they are refused, not corrected, and the client learns of its bug. (The frame's
/// metadata needs no such check: it is never stored.)
fn relay_fields_unset(publish: &pb::Publish) -> Result<(), String> {
    let Some(session) = &publish.session else {
        return Err("publish without a session header: it needs session_message_type MSG".to_owned());
    };
    if session.session_message_type != pb::SessionMessageType::Msg as i32 {
        let kind = pb::SessionMessageType::try_from(session.session_message_type)
            .map_or_else(|_| format!("unknown value {}", session.session_message_type), |k| k.as_str_name().to_owned());
        return Err(format!(
            "a publish must have session_message_type MSG, not {kind}: acks and other session messages come from the relay"
        ));
    }
    if publish.header.as_ref().and_then(|h| h.error) == Some(true) {
        return Err("a publish may not set header.error: error frames come from the relay".to_owned());
    }
    Ok(())
}

/// Reads the destination channel and the `skytale-msg-id` every `Publish` frame (message or head query) needs.
fn channel_and_id(
    publish: &pb::Publish,
    metadata: &HashMap<String, String>,
) -> Result<(ChannelName, String), RefusedPublish> {
    let msg_id = metadata.get(meta::MSG_ID).cloned();
    let refuse = |channel: Option<&ChannelName>, code, message: String| RefusedPublish {
        channel: channel.cloned(),
        msg_id: msg_id.clone(),
        refusal: Refusal::new(code, message),
    };

    let destination = publish.header.as_ref().and_then(|h| h.destination.as_ref());
    let channel = match destination.map(ChannelName::from_slim) {
        Some(Ok(channel)) => channel,
        Some(Err(e)) => return Err(refuse(None, error_code::BAD_REQUEST, format!("bad destination: {e}"))),
        None => return Err(refuse(None, error_code::BAD_REQUEST, "publish without a destination channel".into())),
    };
    let id = match msg_id.as_deref() {
        Some(id) if !id.is_empty() && id.len() <= MAX_MSG_ID_LEN => id.to_owned(),
        _ => {
            let message = format!("publish needs a {} of 1 to {MAX_MSG_ID_LEN} bytes", meta::MSG_ID);
            return Err(refuse(Some(&channel), error_code::BAD_REQUEST, message));
        }
    };
    Ok((channel, id))
}
