//! The OpenAPI document lists exactly the routes the router serves, and every documented operation is really
//! answered by a handler (not by the router's 404/405 fallback).

mod common;

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use common::{Backend, TestApi};

#[tokio::test]
async fn openapi_document_matches_served_routes() {
    let backend = Backend::sqlite();
    let api = TestApi::start(&backend).await;
    let (status, doc) = api.call(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap_or_default().starts_with("3."), "an OpenAPI 3 document");

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths object")
        .iter()
        .flat_map(|(path, operations)| {
            operations.as_object().expect("operations object").keys().map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> =
        api.handle.routes().iter().map(|r| (r.method.to_string(), r.path.to_owned())).collect();
    assert_eq!(documented, served, "documented operations vs served routes");

    for (method, path) in &documented {
        let concrete = path.replace("{join_id}", "join_unknown");
        let method = Method::from_bytes(method.as_bytes()).expect("HTTP method");
        let (status, body) = api.call(method.clone(), concrete.as_str(), None, None).await;
        let answered_by_handler = status.is_success() || body["error"]["code"].is_string();
        assert!(answered_by_handler, "{method} {path}: {status} {body}");
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
    }
}

#[tokio::test]
async fn unknown_route_is_not_answered_by_a_handler() {
    // Guards the check above: the router's own fallback has no error body.
    let backend = Backend::sqlite();
    let api = TestApi::start(&backend).await;
    let (status, body) = api.call(Method::GET, "/v1/nothing-here", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, Value::Null);
}
