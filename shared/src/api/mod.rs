//! The HTTP API: one router per route family, shared by the Lambda binaries (through
//! `lambda_http`) and the local server (through `axum::serve`).

pub mod auth;
pub mod body;
pub mod deliveries;
pub mod endpoints;
mod error;
pub mod key;
pub mod openapi;
mod params;
pub mod portal;
pub mod publish;
pub mod recovery;
pub mod request_metrics;
pub mod search;
pub mod stats;

pub use error::{ApiError, error_body};
pub use params::PathParams;

use axum::Router;

/// Close a router of one or more route families: unknown paths answer a JSON 404 and
/// known paths with the wrong method a JSON 405; every request's body is read, up to its
/// cap, before anything else happens ([`body::buffer_body`]).
pub fn finish(routes: Router) -> Router {
    routes
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn(body::buffer_body))
}
