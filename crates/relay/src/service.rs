//! The gRPC face of the relay: SLIM's `DataPlaneService/OpenChannel`. Each call identifies the stream once,
//! then hands it to its own [`session`](crate::session) task.

use std::sync::Arc;

use skytale_proto::pb::{self, data_plane_service_server::DataPlaneService};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::auth;
use crate::session::{self, Shared};

/// Frames queued for one client. Small on purpose: when the client reads slowly, HTTP/2 flow control fills up,
/// this queue fills up, and the stream's cursors wait instead of buffering.
const OUTBOUND_CAPACITY: usize = 64;

pub struct DataPlane {
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
}

impl DataPlane {
    pub fn new(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) -> Self {
        Self { shared, shutdown }
    }
}

#[tonic::async_trait]
impl DataPlaneService for DataPlane {
    type OpenChannelStream = ReceiverStream<Result<pb::Message, Status>>;

    async fn open_channel(
        &self,
        request: Request<Streaming<pb::Message>>,
    ) -> Result<Response<Self::OpenChannelStream>, Status> {
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
