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
use axum::body::Body;
use axum::extract::Request;
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

/// Close a router of one or more route families: unknown paths answer a JSON 404 and
/// known paths with the wrong method a JSON 405; every request's body is read, up to its
/// cap, before anything else happens ([`extract::body::buffer_body`]).
pub fn finish(routes: Router) -> Router {
    routes
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn(extract::body::buffer_body))
}

/// The answers [`finish`]`(routes)` gives to every request `routes` does not serve, and
/// nothing else: the `$default` route of the deployed API (`fallback-api`), which API
/// Gateway calls for the paths and methods its own routes do not match. Built from the
/// same route families as the service, so both answer a path or method they do not
/// serve alike: the JSON 404 and 405 and the same `Allow` header. Handlers never run.
///
/// API Gateway routes exactly the methods `template.yaml` names, so a `HEAD` (which
/// the service answers as `GET` wherever it serves `GET`) arrives here too: it is
/// answered as a method the path does not serve, as `OPTIONS` is.
pub fn unrouted(routes: Router) -> Router {
    let inner = finish(routes.route_layer(middleware::from_fn(routed_elsewhere)));
    // An outer router, so the method is changed before `inner` routes the request
    // (a router's own layers run after routing).
    Router::new()
        .fallback_service(inner)
        .layer(middleware::from_fn(head_as_unserved))
}

/// A request the service routes reached the `$default` route: `template.yaml` lacks its
/// route (tests keep the two equal). Logged; the deployed API does not serve it.
async fn routed_elsewhere(request: Request, _unused: Next) -> Response {
    tracing::error!(
        method = %request.method(),
        path = request.uri().path(),
        "a route the service serves is not routed by API Gateway; template.yaml lacks it"
    );
    ApiError::NotFound.into_response()
}

/// `HEAD` asked as `OPTIONS`, which no route serves, so it gets the 404 or 405 of any
/// method the path does not serve (axum would send it to the `GET` handler); the
/// answer goes without its body, as every answer to a `HEAD`.
async fn head_as_unserved(mut request: Request, next: Next) -> Response {
    if request.method() != Method::HEAD {
        return next.run(request).await;
    }
    *request.method_mut() = Method::OPTIONS;
    let (parts, _) = next.run(request).await.into_parts();
    Response::from_parts(parts, Body::empty())
}
