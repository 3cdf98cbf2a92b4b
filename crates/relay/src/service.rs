//! The gRPC face of the relay: SLIM's `DataPlaneService/OpenChannel`. Each call identifies the stream once,
//! then hands it to its own [`session`](crate::session) task.
//!
//! The service is wired by hand rather than through the generated `DataPlaneServiceServer`, only so that it can
//! use the relay's [`RelayCodec`]: what goes out is an [`OutFrame`] (deliveries encoded once for every
//! subscriber), while the wire format stays exactly SLIM's.

use std::convert::Infallible;
use std::sync::Arc;

use skytale_proto::pb;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::{http, Body, BoxFuture, Context, Poll, Service, StdError};
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Request, Response, Status, Streaming};

use crate::auth;
use crate::codec::{InFrame, OutFrame, RelayCodec};
use crate::session::{self, Shared};

/// Frames queued for one client. Small on purpose: when the client reads slowly, HTTP/2 flow control fills up,
/// this queue fills up, and the stream's cursors wait instead of buffering.
const OUTBOUND_CAPACITY: usize = 64;

const OPEN_CHANNEL_PATH: &str = "/dataplane.proto.v1.DataPlaneService/OpenChannel";

/// The `DataPlaneService` server, ready for `tonic::transport::Server::add_service`.
#[derive(Clone)]
pub struct DataPlaneServer {
    plane: Arc<DataPlane>,
    max_decoding_message_size: usize,
}

impl DataPlaneServer {
    /// Serves streams with `shared` until `shutdown`; refuses incoming frames larger than `max_frame` bytes.
    pub fn new(shared: Arc<Shared>, shutdown: watch::Receiver<bool>, max_frame: usize) -> Self {
        Self { plane: Arc::new(DataPlane { shared, shutdown }), max_decoding_message_size: max_frame }
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
        if request.uri().path() != OPEN_CHANNEL_PATH {
            return Box::pin(async { Ok(Status::unimplemented("the relay serves OpenChannel only").into_http()) });
        }
        let method = OpenChannel(Arc::clone(&self.plane));
        let max_decoding = self.max_decoding_message_size;
        Box::pin(async move {
            let mut grpc = Grpc::new(RelayCodec).apply_max_message_size_config(Some(max_decoding), None);
            Ok(grpc.streaming(method, request).await)
        })
    }
}

struct DataPlane {
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
}

struct OpenChannel(Arc<DataPlane>);

impl StreamingService<InFrame> for OpenChannel {
    type Response = OutFrame;
    type ResponseStream = ReceiverStream<Result<OutFrame, Status>>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<Streaming<InFrame>>) -> Self::Future {
        let plane = Arc::clone(&self.0);
        Box::pin(async move { plane.open_channel(request) })
    }
}

impl DataPlane {
    fn open_channel(
        &self,
        request: Request<Streaming<InFrame>>,
    ) -> Result<Response<ReceiverStream<Result<OutFrame, Status>>>, Status> {
        let identity = auth::identify(&self.shared.auth, request.metadata()).inspect_err(
            |status| tracing::info!(peer = ?request.remote_addr(), "stream refused: {}", status.message()),
        )?;
        let peer = request.remote_addr();
        let (outbound, responses) = mpsc::channel(OUTBOUND_CAPACITY);
        let shared = Arc::clone(&self.shared);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            tracing::info!(?peer, identity = identity.describe(), "stream opened");
            session::serve(shared, identity, request.into_inner(), outbound, shutdown).await;
            tracing::info!(?peer, "stream closed");
        });
        Ok(Response::new(ReceiverStream::new(responses)))
    }
}
