//! The HTTP API: one router per route family, shared by the Lambda binaries (through
//! `lambda_http`) and the local server (through `axum::serve`).

pub mod auth;
pub mod body;
pub mod deliveries;
pub mod endpoints;
mod error;
mod params;
pub mod publish;

pub use error::ApiError;
pub use params::PathParams;

use axum::Router;

/// Close a router of one or more route families: unknown paths answer a JSON 404 and
/// known paths with the wrong method a JSON 405.
pub fn finish(routes: Router) -> Router {
    routes
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
}
