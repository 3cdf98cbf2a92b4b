//! The gRPC face of the relay: SLIM's `DataPlaneService/OpenChannel`. Each call identifies the stream once,
//! then hands it to its own [`session`](crate::session) task.
//!
//! The service is wired by hand rather than through the generated `DataPlaneServiceServer` or tonic's `Grpc`
//! helper, so that what goes out is the relay's [`OutboundBody`]: deliveries reach HTTP/2 as the bytes every
//! subscriber shares instead of a copy per stream, while the wire format stays exactly SLIM's. Incoming frames are
//! read with tonic's own decoding, through the relay's [`FrameDecoder`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use skytale_proto::meta::error_code;
use skytale_proto::pb;
use tokio::sync::{mpsc, watch};
use tonic::codegen::{http, Body, BoxFuture, Context, Poll, Service, StdError};
use tonic::metadata::MetadataMap;
use tonic::server::NamedService;
use tonic::{Status, Streaming};
use tracing::Instrument;

use crate::auth;
use crate::codec::{FrameDecoder, OutboundBody};
use crate::drain;
use crate::incoming::ConnectionInfo;
use crate::session::{self, Shared};

/// Frames queued for one client. Small on purpose: when the client reads slowly, HTTP/2 flow control fills up,
/// this queue fills up, and the stream's cursors wait instead of buffering.
const OUTBOUND_CAPACITY: usize = 64;

const OPEN_CHANNEL_PATH: &str = "/dataplane.proto.v1.DataPlaneService/OpenChannel";

/// The gRPC request header naming the compression of the client's frames; the relay reads only uncompressed ones.
const GRPC_ENCODING: &str = "grpc-encoding";

/// The `DataPlaneService` server, ready for `tonic::transport::Server::add_service`.
#[derive(Clone)]
pub struct DataPlaneServer {
    plane: Arc<DataPlane>,
}

impl DataPlaneServer {
    /// Serves streams with `shared` until `shutdown`; refuses incoming frames larger than `max_frame` bytes.
    pub fn new(shared: Arc<Shared>, shutdown: watch::Receiver<bool>, max_frame: usize) -> Self {
        Self { plane: Arc::new(DataPlane { shared, shutdown, max_frame, streams: AtomicU64::new(0) }) }
    }
}

impl NamedService for DataPlaneServer {
    const NAME: &'static str = pb::data_plane_service_server::SERVICE_NAME;
}

impl<B> Service<http::Request<B>> for DataPlaneServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let plane = Arc::clone(&self.plane);
        Box::pin(async move {
            let response = if request.uri().path() == OPEN_CHANNEL_PATH {
                plane.open_channel(request).await.unwrap_or_else(Status::into_http)
            } else {
                Status::unimplemented("the relay serves OpenChannel only").into_http()
            };
            Ok(response)
        })
    }
}

struct DataPlane {
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    max_frame: usize,
    /// Streams opened so far: the next one's number, the `stream` field of its log lines.
    streams: AtomicU64,
}

impl DataPlane {
    /// Identifies the stream (which may wait for the API's keys to be fetched again, `trusted_keys`), counts it
    /// against its account's open streams (`quotas`) and starts its session; while the relay drains, refuses it
    /// with the `draining` notice instead (a stream that gets past this check as the drain begins gets the notice
    /// from its session at once).
    async fn open_channel<B>(&self, request: http::Request<B>) -> Result<http::Response<tonic::body::Body>, Status>
    where
        B: Body + Send + 'static,
        B::Error: Into<StdError> + Send + 'static,
    {
        if *self.shutdown.borrow() {
            self.shared.metrics.stream_refused(error_code::DRAINING);
            return Err(drain::status());
        }
        let (parts, body) = request.into_parts();
        if let Some(encoding) = parts.headers.get(GRPC_ENCODING).filter(|e| e.as_bytes() != b"identity") {
            return Err(Status::unimplemented(format!(
                "frames compressed with {encoding:?} are not supported; send them uncompressed"
            )));
        }
        let connection = parts
            .extensions
            .get::<ConnectionInfo>()
            .cloned()
            .ok_or_else(|| Status::internal("a stream on a connection the relay did not accept"))?;
        let peer: Option<SocketAddr> = connection.remote_addr();
        let identity = auth::identify(&self.shared.auth, &MetadataMap::from_headers(parts.headers)).await.map_err(
            |(reason, status)| {
                self.shared.metrics.auth_failed(reason);
                tracing::info!(peer = peer.map(tracing::field::display), "stream refused: {}", status.message());
                status
            },
        )?;
        // Held by the session task, so the account's count drops however the stream ends.
        let slot = match identity.account() {
            Some(account) => Some(self.shared.quotas.open_stream(account).inspect_err(|status| {
                self.shared.metrics.stream_refused(error_code::QUOTA_EXCEEDED);
                tracing::info!(peer = peer.map(tracing::field::display), "stream refused: {}", status.message());
            })?),
            None => None,
        };
        let inbound = Streaming::new_request(FrameDecoder, body, None, Some(self.max_frame));
        let budget = self.shared.in_flight.stream_budget(connection.budget(), identity.account());
        let (outbound, responses) = mpsc::channel(OUTBOUND_CAPACITY);
        let shared = Arc::clone(&self.shared);
        let shutdown = self.shutdown.clone();
        let open = shared.metrics.stream_open();
        // Every line the stream logs, its subscriptions' and replies' included, carries its number and account.
        let creator = identity.creator();
        let span = tracing::info_span!(
            "stream",
            stream = self.streams.fetch_add(1, Ordering::Relaxed) + 1,
            account = creator.as_ref().map(|creator| creator.account.as_str()),
            org = creator.as_ref().map(|creator| creator.org.as_str()),
        );
        tokio::spawn(
            async move {
                let _open = (open, slot);
                tracing::info!(peer = peer.map(tracing::field::display), "stream opened");
                session::serve(shared, identity, inbound, outbound, shutdown, budget).await;
                tracing::info!(peer = peer.map(tracing::field::display), "stream closed");
            }
            .instrument(span),
        );
        http::Response::builder()
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .body(tonic::body::Body::new(OutboundBody::new(responses)))
            .map_err(|e| Status::internal(format!("building the response: {e}")))
    }
}
