//! One log line per request, in a `request` span holding the method, the route template (never the path itself,
//! which may hold a join id), the caller's `account` once `caller` knows it and the `channel` the request names
//! (`routes::parse_channel`). Nothing from the headers or the body is logged: they carry API keys, tokens and key
//! packages. A refused request (4xx, 5xx) is logged at info, the operator's business; others at debug.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::field::Empty;
use tracing::Instrument;

/// Middleware logging every request (see the module's doc).
pub(crate) async fn log_requests(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let span = tracing::info_span!("request", method = %request.method(), route, account = Empty, channel = Empty);
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.in_scope(|| {
        if response.status().is_client_error() || response.status().is_server_error() {
            tracing::info!(status, "request refused");
        } else {
            tracing::debug!(status, "request served");
        }
    });
    response
}
