//! One metric line per API request: its route family, its status class and its latency
//! (`crate::metrics`). Applied by the API Lambdas; the local server has no CloudWatch.

use crate::metrics::{self, MetricsSink};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use std::sync::Arc;
use std::time::Instant;

/// `router` with every request measured into `sink`.
pub fn measured(router: Router, sink: Arc<dyn MetricsSink>) -> Router {
    router.layer(middleware::from_fn_with_state(sink, measure))
}

async fn measure(
    State(sink): State<Arc<dyn MetricsSink>>,
    request: Request,
    next: Next,
) -> Response {
    let family = family(
        request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );
    let started = Instant::now();
    let response = next.run(request).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    sink.emit(&[metrics::api_request(
        family,
        response.status().as_u16(),
        latency_ms,
    )]);
    response
}

/// The route family of a matched route (as the router names it); `unrouted` for a
/// request no route matched; `other` for a route added without a family of its own.
/// Bounded: these eight values are all there are.
fn family(route: Option<&str>) -> &'static str {
    let Some(route) = route else {
        return "unrouted";
    };
    if route == super::key::PATH {
        "key"
    } else if route == super::openapi::PATH {
        "openapi"
    } else if route.ends_with("/deliveries") || route.contains("/webhooks/deliveries") {
        "deliveries"
    } else if route.contains("/webhooks/endpoints") {
        "endpoints"
    } else if route.ends_with("/portal-sessions") {
        "portal"
    } else if route.contains("/webhooks/events") {
        "publish"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryStore;
    use crate::adapters::memory::queue::MemoryQueue;
    use crate::metrics::MetricLine;
    use crate::wiring::Services;
    use axum::body::Body;
    use std::sync::Mutex;
    use tower::ServiceExt;

    #[derive(Default)]
    struct Captured(Mutex<Vec<MetricLine>>);

    impl MetricsSink for Captured {
        fn emit(&self, lines: &[MetricLine]) {
            self.0.lock().expect("lock").extend_from_slice(lines);
        }
    }

    #[test]
    fn families() {
        for (route, family_name) in [
            ("/org/{org_slug}/webhooks/endpoints", "endpoints"),
            (
                "/org/{org_slug}/webhooks/endpoints/{endpoint_id}/test",
                "endpoints",
            ),
            (
                "/org/{org_slug}/webhooks/endpoints/{endpoint_id}/deliveries",
                "deliveries",
            ),
            (
                "/org/{org_slug}/webhooks/deliveries/{delivery_id}/retry",
                "deliveries",
            ),
            ("/org/{org_slug}/webhooks/events", "publish"),
            ("/org/{org_slug}/webhooks/portal-sessions", "portal"),
            ("/key", "key"),
            ("/openapi.json", "openapi"),
        ] {
            assert_eq!(family(Some(route)), family_name, "{route}");
        }
        assert_eq!(family(None), "unrouted");
    }

    #[tokio::test]
    async fn every_request_is_one_line_with_its_family_and_status_class() {
        let (queue, _jobs) = MemoryQueue::new();
        let services = Services::new(Arc::new(MemoryStore::new()), Arc::new(queue));
        let sink = Arc::new(Captured::default());
        let router = measured(services.router(), sink.clone());
        for (uri, status) in [
            ("/openapi.json", 200),
            ("/key", 401),
            ("/org/acme/webhooks/endpoints", 401),
            ("/nowhere", 404),
        ] {
            let response = router
                .clone()
                .oneshot(
                    axum::http::Request::get(uri)
                        .body(Body::empty())
                        .expect("request"),
                )
                .await
                .expect("answer");
            assert_eq!(response.status().as_u16(), status, "{uri}");
        }
        let lines = sink.0.lock().expect("lock").clone();
        let seen: Vec<(String, String)> = lines
            .iter()
            .map(|l| (l.dimensions[0].1.clone(), l.dimensions[1].1.clone()))
            .collect();
        assert_eq!(
            seen,
            [
                ("openapi".into(), "2xx".into()),
                ("key".into(), "4xx".into()),
                ("endpoints".into(), "4xx".into()),
                ("unrouted".into(), "4xx".into()),
            ]
        );
        for line in &lines {
            assert_eq!(
                line.metrics[0],
                ("Requests", metrics::Unit::Count, vec![1.0])
            );
            let (name, unit, values) = &line.metrics[1];
            assert_eq!(
                (*name, *unit, values.len()),
                ("Latency", metrics::Unit::Milliseconds, 1)
            );
        }
    }
}
