//! Who is on the other end of a stream, and what it may use (`docs/protocol.md`, "Authentication and token
//! refresh").
//!
//! This is the one place where stream identity is decided: [`identify`] runs once when a stream opens (the token,
//! and the MLS member key the stream proves by signing it), every subscribe/publish asks [`StreamIdentity`] what
//! the token allows, and an in-band refresh goes through [`StreamIdentity::refresh`]. The relay never calls the
//! API: a token's claims (its org and the channels granted by invites) decide what an account may create and
//! read before a channel exists; once it exists, its MLS group decides, by member key.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use skytale_auth::{Claims, KeyError, TokenError, TokenVerifier, CLOCK_LEEWAY_SECS};
use skytale_proto::meta::{self, error_code};
use skytale_proto::ChannelName;
use tonic::metadata::MetadataMap;
use tonic::Status;

use crate::frames::Refusal;
use crate::jwks::JwksError;
use crate::jwks::JwksFollow;
use crate::membership::MemberKey;
use crate::metrics::AuthFailure;
use crate::trusted_keys::TrustedKeys;

/// The gRPC request header carrying the stream's token at open.
const AUTHORIZATION_HEADER: &str = "authorization";

/// How the relay authenticates streams.
#[derive(Clone)]
pub enum RelayAuth {
    /// Accept anonymous streams and allow every channel. Local development only (`--auth none`).
    None,
    /// Require a Skytale access token (EdDSA JWT issued by the API) on every stream, verified with these keys,
    /// which follow the API's key rotations (`trusted_keys`).
    Jwt(Arc<TrustedKeys>),
}

impl fmt::Debug for RelayAuth {
    // The keys are public, but printing them is noise; the mode and where the keys come from matter in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayAuth::None => f.write_str("None"),
            RelayAuth::Jwt(keys) => write!(f, "Jwt({keys:?})"),
        }
    }
}

impl RelayAuth {
    /// JWT auth with keys that never change (tests, and embedders that manage keys themselves).
    pub fn jwt(verifier: TokenVerifier) -> Self {
        Self::Jwt(Arc::new(TrustedKeys::fixed(verifier)))
    }

    /// JWT auth with the keys of the API's key file at `path` (a relay on the API's host), read again whenever the
    /// file changes.
    pub fn key_file(path: &Path) -> Result<Self, KeyError> {
        Ok(Self::Jwt(Arc::new(TrustedKeys::from_key_file(path)?)))
    }

    /// JWT auth with the API's key set, fetched now (it fails if the set cannot be fetched, so a relay that cannot
    /// verify tokens does not start) and fetched again as `follow` says.
    pub async fn jwks(follow: JwksFollow) -> Result<Self, JwksError> {
        Ok(Self::Jwt(Arc::new(TrustedKeys::from_jwks(follow).await?)))
    }
}

/// The party behind a stream: its account (from the token) and the MLS member key it proved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamIdentity {
    /// The account, as its latest verified token describes it; `None` on a relay with auth off.
    claims: Option<Claims>,
    /// The key of the client's MLS signing identity, proven at stream open (`skytale-member-key` and
    /// `skytale-member-proof`). Only checked with auth on: channels are then written and read by member key.
    member: Option<MemberKey>,
}

/// The account creating a channel, and its org.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Creator {
    pub account: String,
    pub org: String,
}

/// Decides the identity of a new stream from its gRPC request metadata. With JWT auth a missing or bad token, or
/// a member proof that does not verify, fails the call with `UNAUTHENTICATED`, naming the problem; the failure's
/// kind goes with it, for the metrics.
pub async fn identify(
    auth: &RelayAuth,
    request_metadata: &MetadataMap,
) -> Result<StreamIdentity, (AuthFailure, Status)> {
    let keys = match auth {
        RelayAuth::None => return Ok(StreamIdentity { claims: None, member: None }),
        RelayAuth::Jwt(keys) => keys,
    };
    let header =
        ascii_header(request_metadata, AUTHORIZATION_HEADER).map_err(|status| (AuthFailure::Malformed, status))?;
    let claims = keys
        .verify_bearer(header)
        .await
        .map_err(|error| (token_failure(&error), Status::unauthenticated(error.to_string())))?;
    let token = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim).unwrap_or_default();
    let member = member_key(request_metadata, token).map_err(|status| (AuthFailure::MemberProof, status))?;
    Ok(StreamIdentity { claims: Some(claims), member })
}

fn token_failure(error: &TokenError) -> AuthFailure {
    match error {
        TokenError::Missing => AuthFailure::Missing,
        TokenError::Malformed(_) | TokenError::WrongAlgorithm(_) => AuthFailure::Malformed,
        TokenError::UnknownKey(_) | TokenError::BadSignature => AuthFailure::Forged,
        TokenError::Expired => AuthFailure::Expired,
        TokenError::NotYetValid => AuthFailure::NotYetValid,
        TokenError::WrongAudience(_) => AuthFailure::WrongAudience,
    }
}

fn ascii_header<'m>(metadata: &'m MetadataMap, name: &str) -> Result<Option<&'m str>, Status> {
    metadata
        .get(name)
        .map(|value| {
            value.to_str().map_err(|_| Status::unauthenticated(format!("malformed header {name}: it is not ASCII")))
        })
        .transpose()
}

/// Reads and checks the stream's member proof: the key, and its signature over the proof message of `token`.
fn member_key(metadata: &MetadataMap, token: &str) -> Result<Option<MemberKey>, Status> {
    let key = ascii_header(metadata, meta::MEMBER_KEY)?;
    let proof = ascii_header(metadata, meta::MEMBER_PROOF)?;
    let (key, proof) = match (key, proof) {
        (None, None) => return Ok(None),
        (Some(key), Some(proof)) => (key, proof),
        _ => {
            return Err(Status::unauthenticated(format!(
                "{} and {} go together: send both or neither",
                meta::MEMBER_KEY,
                meta::MEMBER_PROOF
            )))
        }
    };
    let hex_value = |name: &str, value: &str| {
        hex::decode(value).map_err(|_| Status::unauthenticated(format!("malformed {name}: it must be hex")))
    };
    let key = MemberKey::from_bytes(hex_value(meta::MEMBER_KEY, key)?);
    let proof = hex_value(meta::MEMBER_PROOF, proof)?;
    if !key.verify(&proof, &meta::member_proof_message(token)) {
        return Err(Status::unauthenticated(format!(
            "bad {}: it is not a signature by {} over this stream's token",
            meta::MEMBER_PROOF,
            meta::MEMBER_KEY
        )));
    }
    Ok(Some(key))
}

fn unauthorized(message: String) -> Refusal {
    Refusal::new(error_code::UNAUTHORIZED, message)
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl StreamIdentity {
    /// The identity of a stream with a verified token and no member proof (what the fuzz targets start from).
    pub(crate) fn from_claims(claims: Claims) -> Self {
        Self { claims: Some(claims), member: None }
    }

    /// The stream's account id (whose channel quota and in-flight budget it uses), unless the relay runs with auth
    /// off.
    pub(crate) fn account(&self) -> Option<&str> {
        self.claims.as_ref().map(|claims| claims.sub.as_str())
    }

    /// Who a channel created on this stream counts against (the channel quota); `None` with auth off.
    pub fn creator(&self) -> Option<Creator> {
        self.claims.as_ref().map(|claims| Creator { account: claims.sub.clone(), org: claims.org.clone() })
    }

    /// The member key this stream proved, if it did.
    pub fn member_key(&self) -> Option<&MemberKey> {
        self.member.as_ref()
    }

    /// The stream's token, unless the relay runs with auth off; fails once it has expired (with the same clock
    /// leeway the verifier allows).
    fn fresh_claims(&self, channel: &ChannelName) -> Result<Option<&Claims>, Refusal> {
        let Some(claims) = &self.claims else {
            return Ok(None);
        };
        if claims.exp.saturating_add(CLOCK_LEEWAY_SECS) < now_secs() {
            return Err(unauthorized(format!("token expired: refresh it to use {channel}")));
        }
        Ok(Some(claims))
    }

    /// Whether this stream may start reading `channel` (subscribe, head query) before the channel exists: the
    /// token must cover it by org or grant. Once the channel exists its members decide (`session`).
    pub fn authorize(&self, channel: &ChannelName) -> Result<(), Refusal> {
        let Some(claims) = self.fresh_claims(channel)? else {
            return Ok(());
        };
        if !claims.may_use_channel(channel) {
            return Err(unauthorized(format!(
                "account {} of org {} may not use channel {channel}: it is neither under the org nor granted",
                claims.sub, claims.org
            )));
        }
        Ok(())
    }

    /// Whether this stream may publish to `channel`: an unexpired token, and to create a channel, the channel's
    /// org. (Who may write an existing channel is its MLS group's business, checked by the log writer.)
    pub fn authorize_publish(&self, channel: &ChannelName, creating: bool) -> Result<(), Refusal> {
        let Some(claims) = self.fresh_claims(channel)? else {
            return Ok(());
        };
        let [org, _, _] = channel.components();
        if creating && org != claims.org {
            return Err(unauthorized(format!(
                "account {} of org {} may not create channel {channel}: an account creates channels in its own org",
                claims.sub, claims.org
            )));
        }
        Ok(())
    }

    /// Whether this stream's token is still valid for `channel`, with no other check: reading a channel that
    /// exists is up to its members.
    pub fn authorize_token(&self, channel: &ChannelName) -> Result<(), Refusal> {
        self.fresh_claims(channel).map(drop)
    }

    /// Replaces the stream's claims with those of `bearer` (the value of `skytale-authorization`), which must be
    /// a valid token for the same account. On failure the old claims stay. The member key stays as proven.
    pub async fn refresh(&mut self, auth: &RelayAuth, bearer: &str) -> Result<(), (AuthFailure, Refusal)> {
        let keys = match auth {
            // Nothing is checked on such a relay, so a refresh has nothing to change.
            RelayAuth::None => return Ok(()),
            RelayAuth::Jwt(keys) => keys,
        };
        let Some(current) = &self.claims else {
            // A JWT relay only admits streams with a verified account.
            return Err((AuthFailure::OtherAccount, unauthorized("this stream has no account to refresh".to_owned())));
        };
        let claims = keys
            .verify_bearer(Some(bearer))
            .await
            .map_err(|error| (token_failure(&error), unauthorized(error.to_string())))?;
        if claims.sub != current.sub {
            let refusal = unauthorized(format!(
                "the new token is for account {}, this stream belongs to {}",
                claims.sub, current.sub
            ));
            return Err((AuthFailure::OtherAccount, refusal));
        }
        self.claims = Some(claims);
        Ok(())
    }

    /// Through when (unix seconds) this stream's token is valid, with the verifier's clock leeway, as
    /// [`authorize`](Self::authorize) counts it; `None` on a relay with auth off, where there is no token to expire.
    pub fn valid_through(&self) -> Option<u64> {
        self.claims.as_ref().map(|claims| claims.exp.saturating_add(CLOCK_LEEWAY_SECS))
    }

    /// A short description for logs (never the token itself).
    pub fn describe(&self) -> String {
        match &self.claims {
            None => "anonymous".to_owned(),
            Some(claims) => format!("{} (org {})", claims.sub, claims.org),
        }
    }
}
