//! Who is on the other end of a stream, and what it may use (`docs/protocol.md`, "Authentication and token
//! refresh").
//!
//! This is the one place where stream identity is decided: [`identify`] runs once when a stream opens, every
//! subscribe/publish asks [`StreamIdentity::authorize`], and an in-band refresh goes through
//! [`StreamIdentity::refresh`]. The relay never calls the API: a token's claims (its org and the channels granted
//! by invites) are all it needs, which is why a refresh must replace them on the open stream.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use skytale_auth::{Claims, TokenVerifier, CLOCK_LEEWAY_SECS};
use skytale_proto::meta::error_code;
use skytale_proto::ChannelName;
use tonic::metadata::MetadataMap;
use tonic::Status;

use crate::frames::Refusal;

/// The gRPC request header carrying the stream's token at open.
const AUTHORIZATION_HEADER: &str = "authorization";

/// How the relay authenticates streams.
#[derive(Clone)]
pub enum RelayAuth {
    /// Accept anonymous streams and allow every channel. Local development only (`--auth none`).
    None,
    /// Require a Skytale access token (EdDSA JWT issued by the API) on every stream, verified with this key set.
    /// Boxed: a key map is much larger than the other variant.
    Jwt(Box<TokenVerifier>),
}

impl fmt::Debug for RelayAuth {
    // The verifier holds only public keys, but printing them is noise; the mode is what matters in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayAuth::None => f.write_str("None"),
            RelayAuth::Jwt(_) => f.write_str("Jwt"),
        }
    }
}

/// The party behind a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamIdentity {
    /// No credentials are checked (`RelayAuth::None`).
    Anonymous,
    /// An account, as its latest verified token describes it.
    Account(Claims),
}

/// Decides the identity of a new stream from its gRPC request metadata. With JWT auth a missing or bad token
/// fails the call with `UNAUTHENTICATED`, naming the problem.
pub fn identify(auth: &RelayAuth, request_metadata: &MetadataMap) -> Result<StreamIdentity, Status> {
    let verifier = match auth {
        RelayAuth::None => return Ok(StreamIdentity::Anonymous),
        RelayAuth::Jwt(verifier) => verifier,
    };
    let header = match request_metadata.get(AUTHORIZATION_HEADER) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| Status::unauthenticated("malformed token: the authorization header is not ASCII"))?,
        ),
    };
    verifier
        .verify_bearer(header)
        .map(StreamIdentity::Account)
        .map_err(|error| Status::unauthenticated(error.to_string()))
}

fn unauthorized(message: String) -> Refusal {
    Refusal::new(error_code::UNAUTHORIZED, message)
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl StreamIdentity {
    /// Whether this stream may subscribe or publish to `channel` now: the token must not have expired (with the
    /// same clock leeway the verifier allows) and must cover the channel by org or grant.
    pub fn authorize(&self, channel: &ChannelName) -> Result<(), Refusal> {
        let claims = match self {
            StreamIdentity::Anonymous => return Ok(()),
            StreamIdentity::Account(claims) => claims,
        };
        if claims.exp.saturating_add(CLOCK_LEEWAY_SECS) < now_secs() {
            return Err(unauthorized(format!("token expired: refresh it to use {channel}")));
        }
        if !claims.may_use_channel(channel) {
            return Err(unauthorized(format!(
                "account {} of org {} may not use channel {channel}: it is neither under the org nor granted",
                claims.sub, claims.org
            )));
        }
        Ok(())
    }

    /// Replaces the stream's claims with those of `bearer` (the value of `skytale-authorization`), which must be
    /// a valid token for the same account. On failure the old claims stay.
    pub fn refresh(&mut self, auth: &RelayAuth, bearer: &str) -> Result<(), Refusal> {
        let verifier = match auth {
            // Nothing is checked on such a relay, so a refresh has nothing to change.
            RelayAuth::None => return Ok(()),
            RelayAuth::Jwt(verifier) => verifier,
        };
        let StreamIdentity::Account(current) = &*self else {
            // A JWT relay only admits streams with a verified account.
            return Err(unauthorized("this stream has no account to refresh".to_owned()));
        };
        let claims = verifier.verify_bearer(Some(bearer)).map_err(|error| unauthorized(error.to_string()))?;
        if claims.sub != current.sub {
            return Err(unauthorized(format!(
                "the new token is for account {}, this stream belongs to {}",
                claims.sub, current.sub
            )));
        }
        *self = StreamIdentity::Account(claims);
        Ok(())
    }

    /// A short description for logs (never the token itself).
    pub fn describe(&self) -> String {
        match self {
            StreamIdentity::Anonymous => "anonymous".to_owned(),
            StreamIdentity::Account(claims) => format!("{} (org {})", claims.sub, claims.org),
        }
    }
}
