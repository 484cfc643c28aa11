//! The deployed API's `$default` route (`fallback-api`): every request API Gateway does
//! not route gets the answer the local server gives it, built from the same route
//! families. Driven by real `lambda_http` requests from `events/` fixtures.

use crate::common::*;
use axum::Router;
use axum::http::HeaderMap;
use bytes::Bytes;
use serde_json::Value;
use shared::wiring::{self, Services};
use std::sync::Arc;

/// The local server's router, as it builds it: every API family and the console, on a
/// fresh store (no keys: the routes it serves answer 401 or serve documents).
fn local() -> Router {
    let (queue, _) = shared::adapters::memory::queue::MemoryQueue::new();
    let services = Services::new(
        Arc::new(shared::adapters::memory::MemoryStore::new()),
        Arc::new(queue),
    );
    shared::api::finish(services.routes().merge(console_routes()))
}

fn console_routes() -> Router {
    console::routes(console::FrameAncestors::default())
}

/// `fallback-api`'s router, as its `main` builds it.
fn fallback() -> Router {
    wiring::fallback_lambda(|services: Services| services.routes().merge(console_routes()))
}

struct Raw {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Raw {
    fn allow(&self) -> Option<&str> {
        self.headers.get("allow").and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

async fn ask(router: &Router, event: &Value) -> Raw {
    let (status, headers, body) =
        testkit::in_process::ask(router.clone(), lambda_request(event)).await;
    Raw {
        status,
        headers,
        body,
    }
}

/// A `$default` event for `method path`, from the fixture.
fn event(method: &str, path: &str) -> Value {
    let mut e = fixture_json("unknown-route.json");
    set_method(&mut e, method);
    set_path(&mut e, path);
    e
}

/// The same answer; to a `HEAD`, both without a body.
fn assert_same(what: &str, local: &Raw, fallback: &Raw) {
    assert_eq!(local.status, fallback.status, "{what}");
    if what.starts_with("HEAD ") {
        assert!(local.body.is_empty() && fallback.body.is_empty(), "{what}");
    } else {
        assert_eq!(local.body, fallback.body, "{what}");
    }
    assert_eq!(local.allow(), fallback.allow(), "{what}");
    assert_eq!(
        local.headers.get("content-type"),
        fallback.headers.get("content-type"),
        "{what}"
    );
}

#[tokio::test]
async fn the_fixtures_get_the_services_json_404_and_405() {
    let (local, fallback) = (local(), fallback());
    let unknown = fixture_json("unknown-route.json");
    let answer = ask(&fallback, &unknown).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json()["error"]["code"], "not_found");
    assert_eq!(answer.headers["content-type"], "application/json");
    assert_same("unknown route", &ask(&local, &unknown).await, &answer);

    let wrong = fixture_json("wrong-method.json");
    let answer = ask(&fallback, &wrong).await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.json()["error"]["code"], "method_not_allowed");
    let allow = answer.allow().expect("an Allow header");
    for served in ["GET", "POST"] {
        assert!(allow.split(',').any(|m| m.trim() == served), "{allow}");
    }
    assert_same("wrong method", &ask(&local, &wrong).await, &answer);
    // Both answers are ones docs/openapi.yaml describes.
    for fixture in ["unknown-route.json", "wrong-method.json"] {
        call(&fallback, lambda_request(&fixture_json(fixture))).await;
    }
}

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE",
];

/// A path the route pattern matches: ids are UUIDs, the console's file one it has.
fn concrete(pattern: &str) -> String {
    pattern
        .replace("{org_slug}", "acme")
        .replace("{file+}", "app.js")
        .split('/')
        .map(|s| {
            if s.starts_with('{') {
                FIXTURE_ENDPOINT_ID
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// For every path `template.yaml` routes: the methods it routes there are exactly those
/// the service serves (every other one is a 405 locally), and whatever API Gateway
/// sends to `$default` instead gets the local server's answer, byte for byte. `HEAD`,
/// which the local server answers as `GET`, gets the 405 any other method would.
#[tokio::test]
async fn every_routed_path_refuses_the_other_methods_as_the_service_does() {
    let (local, fallback) = (local(), fallback());
    let mut by_path: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for route in template_routes() {
        let (method, path) = route.split_once(' ').expect("METHOD /path");
        by_path
            .entry(concrete(path))
            .or_default()
            .push(method.to_owned());
    }
    assert!(by_path.len() >= 15, "{by_path:?}");
    for (path, routed) in &by_path {
        let options = ask(&local, &event("OPTIONS", path)).await;
        assert_eq!(options.status, 405, "OPTIONS {path}");
        for method in METHODS {
            let what = format!("{method} {path}");
            let at_home = ask(&local, &event(method, path)).await;
            if routed.iter().any(|m| m == method) {
                assert!(
                    ![404, 405].contains(&at_home.status),
                    "{what} is served by the service: {}",
                    at_home.status
                );
                continue;
            }
            let away = ask(&fallback, &event(method, path)).await;
            if *method == "HEAD" && routed.iter().any(|m| m == "GET") {
                assert_ne!(at_home.status, 405, "{what}: served locally as GET");
                assert_eq!(away.status, 405, "{what}");
                assert_eq!(away.allow(), options.allow(), "{what}");
                assert!(away.body.is_empty(), "{what}");
                continue;
            }
            assert_eq!(at_home.status, 405, "{what}");
            assert_same(&what, &at_home, &away);
        }
    }
}

/// Paths no route matches: 404 for every method, alike.
#[tokio::test]
async fn unknown_paths_are_404_for_every_method() {
    let (local, fallback) = (local(), fallback());
    for path in [
        "/",
        "/org",
        "/org/acme/webhooks",
        "/org/acme/webhooks/endpoints/",
        "/org/acme/webhooks/endpoints/a/b/c",
        "/key/",
        "/openapi.yaml",
        "/console/no-such-file.js",
        "/console/a/b",
    ] {
        for method in METHODS {
            let what = format!("{method} {path}");
            let away = ask(&fallback, &event(method, path)).await;
            assert_eq!(away.status, 404, "{what}");
            if *method != "HEAD" {
                assert_eq!(away.json()["error"]["code"], "not_found", "{what}");
            }
            assert_same(&what, &ask(&local, &event(method, path)).await, &away);
        }
    }
}
