//! `GET /v1/openapi.json`: the hand-written OpenAPI 3 document, embedded at build time. A test checks that it
//! lists exactly the routes the router serves.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

/// The document, as shipped in `crates/api/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

pub(super) async fn document() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
