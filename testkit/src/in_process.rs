//! Asking an in-process service (an axum router) one request and reading the whole
//! answer, as the API tests, the console tests and the capacity meter all do.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Body;
use hyper::{HeaderMap, Request, Response};
use std::fmt::Debug;
use tower::ServiceExt;

/// Send `request` to `service` and read the answer: status, headers and whole body.
/// Panics if the service or the body fails (a router never does).
pub async fn ask<S, In, Out>(service: S, request: Request<In>) -> (u16, HeaderMap, Bytes)
where
    S: tower::Service<Request<In>, Response = Response<Out>>,
    S::Error: Debug,
    Out: Body,
    Out::Error: Debug,
{
    let response = service
        .oneshot(request)
        .await
        .expect("routers are infallible");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, headers, body)
}
