//! One metric line per API request: its route family, its status class and its latency
//! (`crate::metrics`). Applied by the API Lambdas; the local server has no CloudWatch.

use crate::metrics::{self, MetricsSink};
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use std::sync::Arc;
use std::time::Instant;

/// `router` with every request measured into `sink`.
pub fn measured(router: Router, sink: Arc<dyn MetricsSink>) -> Router {
    router.layer(middleware::from_fn_with_state(sink, measure))
}

/// The route family an answer came from: the router that served it, as
/// [`labelled`] names it.
#[derive(Debug, Clone, Copy)]
struct RouteFamily(&'static str);

/// `router`'s answers labelled as coming from the route family `name` (one per router,
/// so a label names the router, and so the Lambda, that served the request).
pub fn labelled(router: Router, name: &'static str) -> Router {
    router.layer(middleware::map_response(
        move |mut response: Response| async move {
            response.extensions_mut().insert(RouteFamily(name));
            response
        },
    ))
}

async fn measure(
    State(sink): State<Arc<dyn MetricsSink>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    // No family: no route matched the path.
    let family = response
        .extensions()
        .get::<RouteFamily>()
        .map_or("unrouted", |f| f.0);
    sink.emit(&[metrics::api_request(
        family,
        response.status().as_u16(),
        latency_ms,
    )]);
    response
}
