//! The HTTP API: one router per route family, shared by the Lambda binaries (through
//! `lambda_http`) and the local server (through `axum::serve`).
//!
//! A handler's arguments are its checks, in the order they run: the state, the caller
//! (`extract::auth::Caller<Role>`: 401, then 404 for another organisation, then 403),
//! the path ids (404), the query (400), the body last (413, 400, 422). What a request
//! does beyond one store call lives in `crate::pipeline`; a handler parses, authorises,
//! calls, and shapes the answer.

pub mod caller_key;
pub mod deliveries;
pub mod endpoints;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod portal;
pub mod publish;
pub mod request_metrics;
pub mod state;
mod views;

pub use error::{ApiError, Forbidden, error_body};

use axum::Router;

/// Close a router of one or more route families: unknown paths answer a JSON 404 and
/// known paths with the wrong method a JSON 405; every request's body is read, up to its
/// cap, before anything else happens ([`extract::body::buffer_body`]).
pub fn finish(routes: Router) -> Router {
    routes
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn(extract::body::buffer_body))
}
