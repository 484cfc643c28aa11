//! The endpoint API's rules and every error class, driven through fixture-derived Lambda
//! events on both backends.

use crate::common::*;
use serde_json::{Value, json};
use shared::domain::validation::MAX_ENDPOINTS_PER_ORG;
use std::sync::Arc;

const ENDPOINTS: &str = "/org/acme/webhooks/endpoints";

fn endpoint_path(id: &str) -> String {
    format!("{ENDPOINTS}/{id}")
}

async fn authentication_and_scoping(store: Arc<impl Store>) {
    let r = fixture_router(store.clone()).await;

    let none = send(&r, "endpoints-list.json", |e| set_key(e, None)).await;
    assert_error(&none, 401, "unauthorized");
    assert_eq!(none.headers["www-authenticate"], "Bearer");
    // Unauthenticated callers learn nothing, not even that an id is malformed.
    let malformed_id = send(&r, "endpoints-update.json", |e| {
        set_key(e, None);
        set_path(e, &endpoint_path("not-a-uuid"));
    })
    .await;
    assert_error(&malformed_id, 401, "unauthorized");

    let writes = [
        "endpoints-update.json",
        "endpoints-delete.json",
        "endpoints-rotate-secret.json",
    ];
    // An unknown key is 401. Roles: member reads only, publisher publishes only. Another
    // org's key: 404, as if nothing were there.
    let mut refused = vec![
        (
            "endpoints-list.json",
            "avk_not_a_real_key",
            401,
            "unauthorized",
        ),
        ("endpoints-create.json", MEMBER_KEY, 403, "forbidden"),
        ("endpoints-list.json", PUBLISHER_KEY, 403, "forbidden"),
        ("endpoints-list.json", OTHER_ORG_ADMIN_KEY, 404, "not_found"),
    ];
    for fixture in writes {
        refused.push((fixture, MEMBER_KEY, 403, "forbidden"));
        refused.push((fixture, OTHER_ORG_ADMIN_KEY, 404, "not_found"));
    }
    for (fixture, key, status, code) in refused {
        let a = send(&r, fixture, |e| set_key(e, Some(key))).await;
        assert_error(&a, status, code);
    }
    // An org that does not exist: 404 too.
    let nosuch = send(&r, "endpoints-list.json", |e| {
        set_path(e, "/org/nosuch/webhooks/endpoints")
    })
    .await;
    assert_error(&nosuch, 404, "not_found");
    for fixture in writes {
        // Even the other org's admin on its own path cannot reach acme's endpoint.
        let b = send(&r, fixture, |e| {
            set_key(e, Some(OTHER_ORG_ADMIN_KEY));
            let path = e["rawPath"]
                .as_str()
                .expect("path")
                .replace("/org/acme/", "/org/other/");
            set_path(e, &path);
        })
        .await;
        assert_error(&b, 404, "not_found");
    }
    let untouched = stored_fixture_endpoint(store.as_ref()).await;
    assert_eq!(untouched.description, "fixture");
    assert!(!untouched.is_active);
}

async fn routing_and_malformed_requests(store: Arc<impl Store>) {
    let r = fixture_router(store.clone()).await;

    let wrong_method = send(&r, "endpoints-list.json", |e| set_method(e, "PUT")).await;
    assert_error(&wrong_method, 405, "method_not_allowed");
    let get_rotate = send(&r, "endpoints-rotate-secret.json", |e| set_method(e, "GET")).await;
    assert_error(&get_rotate, 405, "method_not_allowed");
    let unknown_route = send(&r, "endpoints-list.json", |e| {
        set_path(e, "/org/acme/webhooks/nothing-here")
    })
    .await;
    assert_error(&unknown_route, 404, "not_found");
    for id in ["not-a-uuid", "00000000-0000-7000-8000-000000000000"] {
        let a = send(&r, "endpoints-update.json", |e| {
            set_path(e, &endpoint_path(id))
        })
        .await;
        assert_error(&a, 404, "not_found");
    }

    for body in ["", "{", "[]", "\"text\"", "{\"url\": }", "null"] {
        let a = send(&r, "endpoints-create.json", |e| set_body(e, body)).await;
        assert_error(&a, 400, "bad_request");
        let b = send(&r, "endpoints-update.json", |e| set_body(e, body)).await;
        assert_error(&b, 400, "bad_request");
    }
    let huge = json!({"url": "https://example.com/", "event_types": ["a"],
        "description": "x".repeat(600 * 1024)})
    .to_string();
    let too_big = send(&r, "endpoints-create.json", |e| set_body(e, &huge)).await;
    assert_error(&too_big, 413, "payload_too_large");

    // Nothing was created or changed by any of that.
    assert_eq!(store.list_endpoints(&acme()).await.expect("list").len(), 1);
}

async fn validation(store: Arc<impl Store>) {
    let r = fixture_router(store.clone()).await;
    let good = json!({"url": "https://example.com/hook", "event_types": ["alert.fired"]});
    let with = |field: &str, value: Value| {
        let mut b = good.clone();
        b[field] = value;
        b.to_string()
    };
    let cases = [
        (with("url", json!("http://example.com/hook")), "url"),
        (with("url", json!("not a url")), "url"),
        (with("url", json!(42)), "url"),
        (
            with(
                "url",
                json!(format!("https://example.com/{}", "a".repeat(2048))),
            ),
            "url",
        ),
        (json!({"event_types": ["a"]}).to_string(), "url"),
        (
            json!({"url": "https://example.com/"}).to_string(),
            "event_types",
        ),
        (with("event_types", json!([])), "event_types"),
        (with("event_types", json!("alert.fired")), "event_types"),
        (with("event_types", json!(["Alert"])), "event_types[0]"),
        (with("event_types", json!(["ok", 3])), "event_types[1]"),
        (
            with(
                "event_types",
                json!((0..51).map(|i| format!("t{i}")).collect::<Vec<_>>()),
            ),
            "event_types",
        ),
        (with("description", json!("d".repeat(257))), "description"),
        (with("description", json!(["x"])), "description"),
    ];
    for (body, field) in &cases {
        let a = send(&r, "endpoints-create.json", |e| set_body(e, body)).await;
        assert_error(&a, 422, "validation_failed");
        assert_eq!(a.json["error"]["field"], *field, "{body}");
    }
    // Fields the route does not take are refused by name, like unknown query parameters.
    for (body, field) in [
        (with("is_active", json!(false)), "is_active"),
        (with("secret", json!("whsec_mine")), "secret"),
    ] {
        let a = send(&r, "endpoints-create.json", |e| set_body(e, &body)).await;
        assert_error(&a, 400, "bad_request");
        assert_eq!(a.json["error"]["field"], field, "{body}");
    }

    let patch_cases = [
        (json!({"url": null}), "url"),
        (json!({"url": "http://example.com/"}), "url"),
        (json!({"is_active": "yes"}), "is_active"),
        (json!({"event_types": []}), "event_types"),
    ];
    for (body, field) in &patch_cases {
        let a = send(&r, "endpoints-update.json", |e| {
            set_body(e, &body.to_string())
        })
        .await;
        assert_error(&a, 422, "validation_failed");
        assert_eq!(a.json["error"]["field"], *field, "{body}");
    }
    let unknown = send(&r, "endpoints-update.json", |e| {
        set_body(e, r#"{"description": "x", "consecutive_failures": 0}"#)
    })
    .await;
    assert_error(&unknown, 400, "bad_request");
    assert_eq!(unknown.json["error"]["field"], "consecutive_failures");
    // A rejected PATCH changes nothing.
    let stored = stored_fixture_endpoint(store.as_ref()).await;
    assert_eq!(stored.url, fixture_endpoint().url);
    assert_eq!(stored.consecutive_failures, 7);
    assert_eq!(store.list_endpoints(&acme()).await.expect("list").len(), 1);
}

async fn update_rules(store: Arc<impl Store>) {
    let r = fixture_router(store.clone()).await;
    let before = stored_fixture_endpoint(store.as_ref()).await;

    let empty = send(&r, "endpoints-update.json", |e| set_body(e, "{}")).await;
    assert_eq!(empty.status, 200, "{}", empty.json);
    assert_eq!(
        empty.json["updated_at"],
        shared::domain::time::format(&before.updated_at)
    );

    let resumed = send(&r, "endpoints-update.json", |e| {
        set_body(
            e,
            r#"{"is_active": true, "event_types": ["a.b", "c"], "description": null}"#,
        )
    })
    .await;
    assert_eq!(resumed.status, 200, "{}", resumed.json);
    assert_eq!(resumed.json["is_active"], true);
    assert_eq!(resumed.json["consecutive_failures"], 0);
    assert_eq!(resumed.json["event_types"], json!(["a.b", "c"]));
    assert_eq!(resumed.json["description"], "");
    assert_eq!(resumed.json["url"], before.url.as_str());
    let after = store
        .get_endpoint(&acme(), before.id)
        .await
        .expect("get")
        .expect("there");
    assert_eq!(after.consecutive_failures, 0);
    assert!(after.is_active);
    assert_eq!(
        after.secret, before.secret,
        "PATCH never touches the secret"
    );
    assert!(after.updated_at >= before.updated_at);
}

async fn endpoint_limit(store: Arc<impl Store>) {
    let r = fixture_router(store.clone()).await;
    for i in 1..MAX_ENDPOINTS_PER_ORG {
        let body = json!({"url": format!("https://example.com/{i}"), "event_types": ["a"]});
        let a = send(&r, "endpoints-create.json", |e| {
            set_body(e, &body.to_string())
        })
        .await;
        assert_eq!(a.status, 201, "endpoint {i}: {}", a.json);
    }
    let over = send(&r, "endpoints-create.json", |_| {}).await;
    assert_error(&over, 422, "endpoint_limit_reached");
    assert_eq!(
        store.list_endpoints(&acme()).await.expect("list").len(),
        MAX_ENDPOINTS_PER_ORG
    );
    // Other orgs are not affected, and deleting frees a place.
    let other = send(&r, "endpoints-create.json", |e| {
        set_key(e, Some(OTHER_ORG_ADMIN_KEY));
        set_path(e, "/org/other/webhooks/endpoints");
    })
    .await;
    assert_eq!(other.status, 201, "{}", other.json);
    assert_eq!(send(&r, "endpoints-delete.json", |_| {}).await.status, 204);
    assert_eq!(send(&r, "endpoints-create.json", |_| {}).await.status, 201);
}

on_both_backends!(
    authentication_and_scoping,
    routing_and_malformed_requests,
    validation,
    update_rules,
    endpoint_limit,
);
