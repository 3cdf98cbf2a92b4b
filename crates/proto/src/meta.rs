//! `Message.metadata` keys that carry Skytale's Delivery-Service semantics over plain SLIM frames.
//!
//! Every key starts with `skytale-`, so a SLIM peer that does not know them still parses and routes every frame.
//! Values are decimal strings unless noted. `docs/protocol.md` describes which frame carries which key.

/// Client -> relay, on `Subscribe`: deliver from this channel sequence number (inclusive).
pub const FROM_SEQ: &str = "skytale-from-seq";
/// Client -> relay, on `Subscribe`: deliver from the first message of this epoch (a member that joined at epoch E
/// asks for E and gets every message from the commit that created E onwards).
pub const FROM_EPOCH: &str = "skytale-from-epoch";
/// Client -> relay, on `Publish`: idempotency id chosen by the sender (opaque string, at most 64 bytes).
/// Relay -> client: echoed on the ack and on every delivery of that message.
pub const MSG_ID: &str = "skytale-msg-id";
/// Relay -> client, on acks and deliveries: the per-channel sequence number the relay assigned.
pub const SEQ: &str = "skytale-seq";
/// Relay -> client, on deliveries: the MLS epoch the relay read from the message framing.
pub const EPOCH: &str = "skytale-epoch";
/// Relay -> client, on deliveries: when the relay stored the message, in milliseconds since the Unix epoch (the
/// relay's clock; the same on every delivery of that message).
pub const STORED_AT: &str = "skytale-stored-at";
/// Relay -> client, on an error frame (`SLIMHeader.error = true`, or a failed `SubscriptionAck`): a stable code.
pub const ERROR_CODE: &str = "skytale-error-code";
/// Relay -> client, on an error frame: a human-readable explanation.
pub const ERROR: &str = "skytale-error";
/// Relay -> client, on the link negotiation reply: the largest accepted `app_payload.blob`, in bytes.
pub const MAX_PAYLOAD: &str = "skytale-max-payload";
/// Client -> relay, on a `Link` negotiation frame: `Bearer <JWT>` replacing the stream's token before it expires.
pub const AUTHORIZATION: &str = "skytale-authorization";
/// Relay -> client, on a successful `SubscriptionAck`: the channel's current epoch (absent for an empty channel).
pub const CHANNEL_EPOCH: &str = "skytale-channel-epoch";
/// Relay -> client, on the ack of a head query (a `Publish` with `SESSION_MESSAGE_TYPE_PING`): the channel's
/// highest stored sequence number (0 if none), read after every earlier publish of the same stream was stored.
pub const HEAD_SEQ: &str = "skytale-head-seq";

/// Client -> relay, as a gRPC request header at stream open: the hex Ed25519 public key of the client's MLS
/// signing identity. A relay with auth on lets the stream use a channel only while this key is a member of the
/// channel's MLS group (docs/protocol.md, "Membership").
pub const MEMBER_KEY: &str = "skytale-member-key";
/// Client -> relay, as a gRPC request header at stream open: the hex Ed25519 signature by [`MEMBER_KEY`] over
/// [`member_proof_message`] of the stream's token, proving the stream holds the key and binding it to the token.
pub const MEMBER_PROOF: &str = "skytale-member-proof";
/// In the message of an `unauthorized` refusal: the stream's member key is not in the channel's group, so the
/// channel exists and is not this stream's. A client that was creating that channel reports the name as taken.
pub const NOT_A_MEMBER: &str = "is not a member of";

/// What a stream's [`MEMBER_PROOF`] signs: a fixed label and the stream's bearer token (empty without one). The
/// label keeps the signature from being mistaken for any MLS signature made with the same key, and the token
/// (which names the account and expires) keeps a proof seen once from opening streams for another account.
pub fn member_proof_message(token: &str) -> Vec<u8> {
    const LABEL: &[u8] = b"skytale member proof v1\n";
    let mut message = Vec::with_capacity(LABEL.len() + token.len());
    message.extend_from_slice(LABEL);
    message.extend_from_slice(token.as_bytes());
    message
}

/// `ApplicationPayload.payload_type` values, saying which kind of MLS message `blob` holds.
pub mod payload_type {
    pub const APPLICATION: &str = "mls/application";
    pub const COMMIT: &str = "mls/commit";
    pub const PROPOSAL: &str = "mls/proposal";
    /// The channel's creation: the creator's GroupInfo (with the ratchet tree), from which the relay follows
    /// the group's public state.
    pub const GROUP_INFO: &str = "mls/group-info";
}

/// Stable error codes (the value of [`ERROR_CODE`]).
pub mod error_code {
    /// A commit or message for an epoch that is not the channel's current epoch.
    pub const STALE_EPOCH: &str = "stale_epoch";
    /// `blob` is larger than the relay's payload limit.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// `blob` is not an MLS message the channel accepts (malformed, another group's, a handshake that is not a
    /// valid PublicMessage of a current member).
    pub const BAD_MESSAGE: &str = "bad_message";
    /// The frame is not valid for this stream (missing header, bad name, ...).
    pub const BAD_REQUEST: &str = "bad_request";
    /// The requested sequence is older than what the log still retains.
    pub const RETENTION_EXPIRED: &str = "retention_expired";
    /// The stream's credentials do not allow this channel.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// The relay could not store the message.
    pub const STORAGE: &str = "storage";
    /// A GroupInfo for a channel that already exists: a channel is created once.
    pub const CHANNEL_EXISTS: &str = "channel_exists";
    /// The account or org has created as many channels as the relay allows.
    pub const QUOTA_EXCEEDED: &str = "quota_exceeded";
    /// The stream already has as many subscriptions as the relay allows one stream.
    pub const QUOTA_SUBSCRIPTIONS: &str = "quota_subscriptions";
    /// The stream already used as many distinct channel names as the relay allows one stream.
    pub const QUOTA_NAMES: &str = "quota_names";
    /// The relay ended a stream that had no subscription and sent no publish or head query for too long.
    pub const IDLE_TIMEOUT: &str = "idle_timeout";
    /// The relay is shutting down: it answered what the stream had sent and ends the stream (gRPC status
    /// `UNAVAILABLE` with this code in its trailers), or refuses a new one. Not a failure: the client reconnects,
    /// to the same relay once it is back or to another, and resends what was not acknowledged.
    pub const DRAINING: &str = "draining";
}

/// Payload limit when the relay is not configured otherwise: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 1 << 20;
