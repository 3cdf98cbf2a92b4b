//! Every series the API exports on its admin listener's `/metrics` (docs/operations.md, "Health and metrics"),
//! named here and nowhere else, and the middleware that counts requests.
//!
//! Requests are labelled by the route *template* the router matched (`/v1/channels/join/{join_id}`), never the
//! concrete path, and by method and status; a path no route matches is `unmatched` and a method other than GET
//! or POST is `other`. So every label comes from a fixed set, and unknown paths, ids, channels or accounts
//! cannot add series.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Bucket bounds of request durations, in seconds: most requests take milliseconds; long-polls up to 60 s.
const DURATION_BOUNDS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0, 60.0];

/// The `route` label of a request no route matched.
const UNMATCHED: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: &'static str,
}

/// The API's series.
pub(crate) struct ApiMetrics {
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub long_polls_waiting: Gauge,
    pub invites_redeemed: Counter,
    pub joins_admitted: Counter,
}

impl ApiMetrics {
    /// The series, registered in a new registry.
    pub(crate) fn new() -> (Self, Registry) {
        let mut registry = Registry::with_prefix("skytale_api");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "Requests answered, by method, route template and status", requests.clone());
        let durations: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(DURATION_BOUNDS));
        registry.register(
            "request_duration_seconds",
            "Time to answer a request (long-polls included), by method and route template",
            durations.clone(),
        );
        let long_polls_waiting = Gauge::default();
        registry.register(
            "long_polls_waiting",
            "Long-polls waiting for a join or a Welcome",
            long_polls_waiting.clone(),
        );
        let invites_redeemed = Counter::default();
        registry.register("invites_redeemed", "Invites redeemed by a join request", invites_redeemed.clone());
        let joins_admitted = Counter::default();
        registry.register("joins_admitted", "Join requests welcomed into their channel", joins_admitted.clone());
        let metrics = Self { requests, durations, long_polls_waiting, invites_redeemed, joins_admitted };
        (metrics, registry)
    }
}

/// What [`track_requests`] needs: the series, and the templates of the served routes, the only `route` values
/// besides [`UNMATCHED`].
#[derive(Clone)]
pub(crate) struct RequestTracking {
    pub metrics: Arc<ApiMetrics>,
    pub templates: Arc<[&'static str]>,
}

impl RequestTracking {
    fn route(&self, matched: Option<&MatchedPath>) -> &'static str {
        matched
            .and_then(|matched| self.templates.iter().find(|template| **template == matched.as_str()))
            .copied()
            .unwrap_or(UNMATCHED)
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        _ => "other",
    }
}

/// Middleware counting every request by route template and status, and timing it.
pub(crate) async fn track_requests(State(tracking): State<RequestTracking>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = tracking.route(request.extensions().get::<MatchedPath>());
    let metrics = &tracking.metrics;
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    metrics.requests.get_or_create(&RequestLabels { method, route, status }).inc();
    metrics.durations.get_or_create(&RouteLabels { method, route }).observe(started.elapsed().as_secs_f64());
    response
}
