//! `GET /openapi.json`: the API's OpenAPI 3.1 document, needing no key.
//!
//! The source is `docs/openapi.yaml`; `build.rs` turns it into JSON at build time, so the
//! binaries carry the text and no YAML parser, and a broken document fails the build.

use super::error::ApiError;
use super::extract::query::NoQuery;
use super::request_metrics::labelled;
use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The document as JSON, exactly as served. Tests validate every answer against it.
pub const OPENAPI_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

/// Where the document is served.
pub const PATH: &str = "/openapi.json";

pub fn routes() -> Router {
    labelled(Router::new().route(PATH, get(document)), "openapi")
}

/// Takes no query parameters, like every route: a stray one is a 400 naming it.
async fn document(_: NoQuery) -> Result<Response, ApiError> {
    Ok(([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_json() {
        let doc: serde_json::Value =
            serde_json::from_str(OPENAPI_JSON).expect("build.rs wrote JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["paths"][PATH]["get"].is_object(), "documents itself");
    }
}
