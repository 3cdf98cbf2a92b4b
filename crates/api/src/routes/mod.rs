//! The HTTP surface: every route is added through [`RouteBook`], which also records it, so the served route
//! list can be checked against the OpenAPI document.

mod channels;
mod joins;
mod openapi;
mod tokens;

use axum::handler::Handler;
use axum::http::Method;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;

use crate::metrics::{track_requests, RequestTracking};
use crate::request_log::log_requests;
use crate::state::AppState;

/// One served operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Route {
    pub method: Method,
    /// Path template in axum/OpenAPI syntax, e.g. `/v1/channels/join/{join_id}`.
    pub path: &'static str,
}

/// Builds the router, counting every request in the state's metrics, and the list of what it serves.
pub(crate) fn router(state: AppState) -> (Router, Vec<Route>) {
    let book = RouteBook::default()
        .get("/.well-known/jwks.json", tokens::jwks)
        .post("/v1/tokens", tokens::issue_token)
        .post("/v1/channels", channels::register_channel)
        .post("/v1/channels/invites", channels::create_invite)
        .post("/v1/channels/join", joins::request_join)
        .get("/v1/channels/join/{join_id}", joins::join_status)
        .get("/v1/channels/joins", joins::pending_joins)
        .post("/v1/channels/joins/welcome", joins::welcome_joins)
        .post("/v1/channels/joins/reject", joins::reject_joins)
        .get("/v1/openapi.json", openapi::document);
    let tracking = RequestTracking {
        metrics: state.metrics.clone(),
        templates: book.routes.iter().map(|route| route.path).collect(),
    };
    // `layer` (not `route_layer`) so that requests no route matches are counted and logged too.
    let router = book
        .router
        .layer(middleware::from_fn(log_requests))
        .layer(middleware::from_fn_with_state(tracking, track_requests));
    (router.with_state(state), book.routes)
}

#[derive(Default)]
struct RouteBook {
    router: Router<AppState>,
    routes: Vec<Route>,
}

impl RouteBook {
    fn get<H: Handler<T, AppState>, T: 'static>(mut self, path: &'static str, handler: H) -> Self {
        self.router = self.router.route(path, get(handler));
        self.routes.push(Route { method: Method::GET, path });
        self
    }

    fn post<H: Handler<T, AppState>, T: 'static>(mut self, path: &'static str, handler: H) -> Self {
        self.router = self.router.route(path, post(handler));
        self.routes.push(Route { method: Method::POST, path });
        self
    }
}

/// Parses a channel name from a request, answering 400 `invalid_channel_name` if it is not one; a valid one is
/// the `channel` of the request's log line (`request_log`).
fn parse_channel(name: &str) -> Result<skytale_proto::ChannelName, crate::error::ApiError> {
    let channel = skytale_proto::ChannelName::parse(name)
        .map_err(|e| crate::error::ApiError::InvalidChannelName(e.to_string()))?;
    tracing::Span::current().record("channel", name);
    Ok(channel)
}
