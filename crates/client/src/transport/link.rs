//! The link: one gRPC stream to the relay at a time. Opening and negotiating it, reading it until it breaks,
//! reconnecting with backoff, and keeping its token fresh. A stream refused for a quota (the account has its limit
//! of streams open, `quota_exceeded`) fails `connect` with [`Error::Quota`]; refused on a reconnect, it fails the
//! calls waiting for the link with that error at once, while reconnecting goes on.
//!
//! With several relay endpoints (failover), the first link goes to the first one that answers, in the configured
//! order, and whenever a link cannot be opened, is lost or is drained, the next attempt goes to the next endpoint
//! round the list, at once: the backoff is only waited after a full round of failed attempts, one per endpoint.
//! With one endpoint that is exactly a reconnect with backoff. What the link carries does not depend on the relay
//! it reaches: every link resubscribes each channel from its next sequence and resends an unanswered publish with
//! its msg-id, and is opened with its own fresh token, member proof and (for `https://`) TLS settings.
//!
//! A stream the relay ends with the `draining` notice (docs/protocol.md, "Draining") is the relay stopping
//! gracefully, to be back soon or replaced: the reconnect (to the next endpoint) is logged at info rather than
//! warn, and so are the failed attempts while it restarts, for up to [`DRAIN_QUIET`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use skytale_proto::meta::{error_code, ERROR_CODE};
use skytale_proto::pb;
use skytale_proto::pb::data_plane_service_client::DataPlaneServiceClient;
use tokio::sync::mpsc;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_stream::wrappers::ReceiverStream;

use super::endpoints::RelayEndpoint;
use super::requests::ById;
use super::rotation::Rotation;
use super::{runtime_lock, Relay, SEND_DEADLINE};
use crate::credentials::Credentials;
use crate::error::{with_causes, Error};
use crate::frames::{self, Incoming};
use crate::tls;

/// How long `connect` (and each reconnect attempt) may take.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Retry pace of a failed token refresh (the old token stays valid for a third of its lifetime).
const REFRESH_RETRY: Duration = Duration::from_secs(1);
const MAX_REFRESH_RETRY: Duration = Duration::from_secs(30);
const OUTGOING_QUEUE: usize = 256;
/// Frames carry at most one MLS message of at most the relay's payload limit; leave room for a generous limit.
const MAX_FRAME: usize = 64 << 20;
/// After the relay said it is draining, how long failed reconnects are expected (the relay restarting) and logged
/// at info: as long as a send waits for the relay. A relay not back by then is logged at warn, as any outage.
const DRAIN_QUIET: Duration = SEND_DEADLINE;

/// How a link ended.
enum LinkEnd {
    /// The relay ended the stream with the `draining` notice.
    Drained,
    /// Anything else, in words for the log.
    Lost(String),
}

/// Why a link could not be opened on one endpoint.
pub(super) enum OpenError {
    /// No relay there took the stream (down, unreachable, too slow, untrusted certificate, stream ended early):
    /// another endpoint may. `reason` names the endpoint; `hint` says what to check.
    Unreached { reason: String, hint: Option<&'static str> },
    /// A relay refused this client (credentials, quota), or the link could not be prepared (token, headers):
    /// every endpoint of one deployment would end the same way.
    Refused(Error),
}

impl From<OpenError> for Error {
    fn from(error: OpenError) -> Self {
        match error {
            OpenError::Unreached { reason, hint: Some(hint) } => Error::Transport(format!("{reason}: {hint}")),
            OpenError::Unreached { reason, hint: None } => Error::Transport(reason),
            OpenError::Refused(error) => error,
        }
    }
}

impl From<Error> for OpenError {
    fn from(error: Error) -> Self {
        OpenError::Refused(error)
    }
}

/// The relay's `skytale-error-code` on a status that ended or refused a stream, if it gave one.
fn relay_error_code(status: &tonic::Status) -> Option<&str> {
    status.metadata().get(ERROR_CODE).and_then(|code| code.to_str().ok())
}

/// Whether `status` is the relay's `draining` notice: `UNAVAILABLE` with `skytale-error-code: draining`.
fn is_draining(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable && relay_error_code(status) == Some(error_code::DRAINING)
}

/// The open stream's sending half, and which link it is (every reconnect is a new generation).
#[derive(Clone)]
pub(super) struct Link {
    pub frames: mpsc::Sender<pb::Message>,
    pub generation: u64,
}

type Inbound = tonic::Streaming<pb::Message>;

/// A negotiated stream, not yet put up as the link: its sending half and what the relay sends on it.
pub(super) type Opened = (mpsc::Sender<pb::Message>, Inbound);

/// What to do about a relay that cannot be reached, in the SDK's terms.
const UNREACHABLE_HINT: &str = "is it running, and is this its address? For a local stack run `skytale dev` and use \
     the SKYTALE_RELAY it prints (the endpoint argument, or the SKYTALE_RELAY environment variable)";

/// One error for a first link that no endpoint took, from each endpoint's reason and hint (in the configured
/// order): with one endpoint its own error, with several every reason and each distinct hint once.
fn none_reached(relays: String, mut unreached: Vec<(String, Option<&'static str>)>) -> Error {
    if let [_] = unreached.as_slice() {
        let (reason, hint) = unreached.remove(0);
        return OpenError::Unreached { reason, hint }.into();
    }
    let mut hints: Vec<&str> = Vec::new();
    for hint in unreached.iter().filter_map(|(_, hint)| *hint) {
        if !hints.contains(&hint) {
            hints.push(hint);
        }
    }
    let reasons: Vec<String> = unreached.into_iter().map(|(reason, _)| reason).collect();
    let mut text = format!("none of the {relays} took a stream: {}", reasons.join("; "));
    for hint in hints {
        text.push_str(": ");
        text.push_str(hint);
    }
    Error::Transport(text)
}

impl Relay {
    fn status_error(&self, endpoint: &RelayEndpoint, status: tonic::Status) -> OpenError {
        let url = endpoint.url();
        if relay_error_code(&status).is_some_and(|code| code.starts_with("quota")) {
            return Error::Quota(format!("the relay at {url} refused a new stream: {}", status.message())).into();
        }
        match status.code() {
            // The relay's own words are about headers; a client without credentials is told what to configure.
            tonic::Code::Unauthenticated if self.credentials.is_none() => Error::Auth(format!(
                "the relay at {url} requires an API key: pass api_key and api_url (or set SKYTALE_API_KEY and \
                 SKYTALE_API_URL; `skytale dev` prints both) (the relay said: {})",
                status.message()
            ))
            .into(),
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
                Error::Auth(format!("the relay at {url} refused this client: {}", status.message())).into()
            }
            // A draining relay refuses new streams with UNAVAILABLE: another endpoint may take it.
            _ => OpenError::Unreached {
                reason: format!("the relay at {url} ended the stream: {}", status.message()),
                hint: None,
            },
        }
    }

    /// Opens a link on the first endpoint that takes it, in the configured order, and says which (its index). A
    /// refusal ends the search at once: the relays of one deployment share the accounts and their limits.
    pub(super) async fn open_first_link(&self) -> Result<(usize, Opened), Error> {
        let mut unreached = Vec::new();
        for index in 0..self.endpoints.len() {
            match self.open_link(index).await {
                Ok(opened) => return Ok((index, opened)),
                Err(OpenError::Unreached { reason, hint }) => {
                    if index + 1 < self.endpoints.len() {
                        let next = self.endpoints.get(index + 1).url();
                        tracing::warn!(%reason, next, "relay endpoint not reached; trying the next one");
                    }
                    unreached.push((reason, hint));
                }
                Err(OpenError::Refused(error)) => return Err(error),
            }
        }
        Err(none_reached(self.endpoints.describe(), unreached))
    }

    /// Opens and negotiates a link on the endpoint at `index`, within [`CONNECT_TIMEOUT`].
    pub(super) async fn open_link(&self, index: usize) -> Result<Opened, OpenError> {
        let endpoint = self.endpoints.get(index);
        match timeout(CONNECT_TIMEOUT, self.try_open_link(endpoint)).await {
            Ok(result) => result,
            Err(_) => Err(OpenError::Unreached {
                reason: format!("the relay at {} did not answer within {CONNECT_TIMEOUT:?}", endpoint.url()),
                hint: Some(UNREACHABLE_HINT),
            }),
        }
    }

    async fn try_open_link(&self, endpoint: &RelayEndpoint) -> Result<Opened, OpenError> {
        let url = endpoint.url();
        let unreachable = |e: tonic::transport::Error| {
            // tonic's outermost message is "transport error", which the prefix already says.
            let causes = with_causes(&e);
            let causes = causes.strip_prefix("transport error: ").unwrap_or(&causes);
            let hint = if tls::is_untrusted_certificate(&e) { tls::UNTRUSTED_HINT } else { UNREACHABLE_HINT };
            OpenError::Unreached { reason: format!("cannot reach the relay at {url} ({causes})"), hint: Some(hint) }
        };
        let mut grpc = endpoint
            .grpc()
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(10));
        if tls::is_https(url) {
            grpc = grpc
                .tls_config(self.roots.grpc())
                .map_err(|e| Error::Transport(format!("invalid TLS settings for {url}: {e}")))?;
        }
        // Fetched per link: a reconnect presents a fresh token with every grant recorded so far.
        let token = match &self.credentials {
            Some(credentials) => Some(credentials.token_for_new_stream().await?),
            None => None,
        };
        let bearer = token.as_deref().map(bearer_value).transpose()?;
        let member_headers = self.member.headers(token.as_deref().unwrap_or_default())?;
        let channel = grpc.connect().await.map_err(unreachable)?;
        let mut client = DataPlaneServiceClient::new(channel)
            .max_decoding_message_size(MAX_FRAME)
            .max_encoding_message_size(MAX_FRAME);
        let (frames, outgoing) = mpsc::channel(OUTGOING_QUEUE);
        let link_id = format!("{:x}", rand::random::<u64>());
        let ended_early =
            |what: &str| OpenError::Unreached { reason: format!("the relay at {url} {what}"), hint: None };
        frames
            .send(frames::link_negotiation(&link_id))
            .await
            .map_err(|_| ended_early("closed the link before negotiation"))?;
        let mut request = tonic::Request::new(ReceiverStream::new(outgoing));
        if let Some(bearer) = bearer {
            request.metadata_mut().insert("authorization", bearer);
        }
        for (name, value) in member_headers {
            let value = value.parse().map_err(|_| Error::Runtime(format!("{name} is not a valid header value")))?;
            request.metadata_mut().insert(name, value);
        }
        let mut inbound =
            client.open_channel(request).await.map_err(|status| self.status_error(endpoint, status))?.into_inner();
        loop {
            match inbound.message().await.map_err(|status| self.status_error(endpoint, status))? {
                Some(frame) => match frames::classify(frame) {
                    Incoming::LinkReply { max_payload, .. } => {
                        if let Some(limit) = max_payload {
                            self.max_payload.store(limit, Ordering::Relaxed);
                        }
                        return Ok((frames, inbound));
                    }
                    other => tracing::debug!(?other, "frame before link negotiation reply ignored"),
                },
                None => return Err(ended_early("closed the stream during link negotiation")),
            }
        }
    }

    /// Keeps a link up until the client closes, starting with `first` (on the endpoint at `index`). Each failed
    /// attempt, lost link and drain moves to the next endpoint at once; a full round of failed attempts (one per
    /// endpoint) waits the backoff (see [`Rotation`]).
    pub(super) async fn supervise(self: Arc<Self>, index: usize, mut first: Option<Opened>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut rotation = Rotation::new(self.endpoints.len(), index);
        // The endpoint of the last link that was up, to log a move to another one.
        let mut last_linked: Option<usize> = None;
        // When the last link ended with the relay's draining notice, if no link came up since.
        let mut drained_at: Option<Instant> = None;
        while !*shutdown.borrow_and_update() {
            let (frames, inbound) = match first.take() {
                Some(link) => link,
                None => match self.open_link(rotation.current()).await {
                    Ok(link) => link,
                    Err(e) => {
                        let e = Error::from(e);
                        let endpoint = self.endpoints.get(rotation.current()).url();
                        let wait = rotation.attempt_failed();
                        let next = self.endpoints.get(rotation.current()).url();
                        if drained_at.is_some_and(|at| at.elapsed() < DRAIN_QUIET) {
                            tracing::info!(error = %e, endpoint, next, ?wait, "the relay is not back yet after draining");
                        } else {
                            tracing::warn!(error = %e, endpoint, next, ?wait, "relay reconnect failed");
                        }
                        // Calls waiting for a link fail with a quota refusal (woken here), and wait out any other
                        // failure: the relay may be back before their deadline.
                        let refusal = match &e {
                            Error::Quota(why) => Some(why.clone()),
                            _ => None,
                        };
                        let refused = refusal.is_some();
                        self.refused_for_quota(refusal);
                        if refused {
                            self.link.send_replace(None);
                        }
                        if let Some(wait) = wait {
                            tokio::select! {
                                _ = tokio::time::sleep(wait) => {}
                                _ = shutdown.changed() => {}
                            }
                        }
                        continue;
                    }
                },
            };
            rotation.linked();
            self.refused_for_quota(None);
            drained_at = None;
            let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
            let link = Link { frames, generation };
            let endpoint = self.endpoints.get(rotation.current()).url();
            match last_linked {
                Some(before) if before != rotation.current() => {
                    let from = self.endpoints.get(before).url();
                    tracing::info!(endpoint, from, link = generation, "connected to another relay endpoint (failover)");
                }
                _ => tracing::info!(endpoint, link = generation, "connected to the relay"),
            }
            last_linked = Some(rotation.current());
            self.link.send_replace(Some(link.clone()));
            self.resubscribe_all(&link).await;
            let end = tokio::select! {
                end = self.read(inbound) => Some(end),
                _ = shutdown.changed() => None,
            };
            self.link.send_replace(None);
            self.forget_waiters(generation);
            // A link that broke as the client closed (both ready at once) was not lost.
            let closing = *shutdown.borrow();
            let next = self.endpoints.get(rotation.next()).url();
            match end {
                Some(LinkEnd::Drained) => {
                    tracing::info!(endpoint, next, "the relay is draining; reconnecting");
                    drained_at = Some(Instant::now());
                }
                Some(LinkEnd::Lost(reason)) if !closing => tracing::warn!(%reason, endpoint, next, "relay link lost"),
                Some(LinkEnd::Lost(_)) | None => {}
            }
            rotation.link_ended();
        }
        self.link.send_replace(None);
        self.forget_waiters(u64::MAX);
    }

    async fn read(&self, mut inbound: Inbound) -> LinkEnd {
        loop {
            match inbound.message().await {
                Ok(Some(frame)) => self.dispatch(frames::classify(frame)).await,
                Ok(None) => return LinkEnd::Lost("relay closed the stream".into()),
                Err(status) if is_draining(&status) => return LinkEnd::Drained,
                Err(status) => return LinkEnd::Lost(status.to_string()),
            }
        }
    }

    /// Waits until a link is up (or the deadline passes / the client closes).
    pub(super) async fn wait_for_link(&self, deadline: Instant) -> Result<Link, Error> {
        let mut link = self.link.subscribe();
        loop {
            if *self.shutdown.borrow() {
                return Err(Error::Transport("client is closed".into()));
            }
            if let Some(current) = link.borrow_and_update().clone() {
                return Ok(current);
            }
            if let Some(why) = self.quota_refusal.lock().map_err(runtime_lock)?.clone() {
                return Err(Error::Quota(why));
            }
            if timeout_at(deadline, link.changed()).await.is_err() {
                return Err(Error::Transport(format!(
                    "{} unreachable for {SEND_DEADLINE:?}",
                    self.endpoints.describe()
                )));
            }
        }
    }

    /// Records why the relay refused the last attempt to open a stream for a quota, or (`None`) that the last
    /// attempt succeeded or failed otherwise.
    fn refused_for_quota(&self, why: Option<String>) {
        if let Ok(mut refusal) = self.quota_refusal.lock() {
            *refusal = why;
        }
    }

    pub(super) fn link_is(&self, generation: u64) -> bool {
        self.link.borrow().as_ref().is_some_and(|l| l.generation == generation)
    }

    pub(super) async fn await_link_change(&self, generation: u64, deadline: Instant) -> Result<(), Error> {
        let mut link = self.link.subscribe();
        while link.borrow_and_update().as_ref().is_some_and(|l| l.generation == generation) {
            if timeout_at(deadline, link.changed()).await.is_err() {
                return Err(Error::Transport(format!(
                    "{} unreachable for {SEND_DEADLINE:?}",
                    self.endpoints.describe()
                )));
            }
        }
        Ok(())
    }

    /// Replaces the open stream's token with a fresh one (carrying every grant recorded so far) and waits for
    /// the relay to accept it. Without credentials there is nothing to refresh. If the link drops meanwhile, the
    /// next link is opened with a fresh token anyway, and the refresh is repeated on it.
    pub async fn refresh_token(&self) -> Result<(), Error> {
        let Some(credentials) = &self.credentials else { return Ok(()) };
        let jwt = credentials.fresh_token().await?;
        let deadline = Instant::now() + SEND_DEADLINE;
        let mut refresh = ById::new(&self.refreshes, || {
            let link_id = format!("refresh-{:x}", rand::random::<u64>());
            let frame = frames::token_refresh(&link_id, &jwt);
            (link_id, frame)
        });
        match self.exchange(&mut refresh, deadline).await? {
            Some(Ok(())) => Ok(()),
            Some(Err(refusal)) => {
                Err(Error::Auth(format!("relay refused the refreshed token ({}): {}", refusal.code, refusal.message)))
            }
            None => Err(Error::Transport(format!("relay did not answer the token refresh within {SEND_DEADLINE:?}"))),
        }
    }

    /// Refreshes the stream's token whenever the last fetched one reaches its refresh time; a failed refresh is
    /// logged and retried with backoff (the current token stays valid for another third of its lifetime).
    pub(super) async fn keep_token_fresh(self: Arc<Self>, credentials: Arc<Credentials>) {
        let mut due = credentials.refresh_due();
        let mut shutdown = self.shutdown.subscribe();
        let mut retry = REFRESH_RETRY;
        let mut retry_at: Option<Instant> = None;
        while !*shutdown.borrow_and_update() {
            let wake = retry_at.or(*due.borrow_and_update());
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sleep => {}
                // A token was fetched elsewhere (reconnect, explicit refresh): recompute.
                Ok(()) = due.changed() => {
                    retry_at = None;
                    continue;
                }
                _ = shutdown.changed() => continue,
            }
            match self.refresh_token().await {
                Ok(()) => {
                    retry = REFRESH_RETRY;
                    retry_at = None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?retry, "token refresh failed; retrying");
                    retry_at = Some(Instant::now() + retry);
                    retry = (retry * 2).min(MAX_REFRESH_RETRY);
                }
            }
        }
    }
}

fn bearer_value(jwt: &str) -> Result<tonic::metadata::MetadataValue<tonic::metadata::Ascii>, Error> {
    format!("Bearer {jwt}")
        .parse()
        .map_err(|_| Error::Auth("the API issued a token that is not a valid header value".into()))
}
