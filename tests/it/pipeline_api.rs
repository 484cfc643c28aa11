//! The publish and delivery routes' rules and errors, through fixture-derived events.

use crate::common::*;
use serde_json::json;
use std::sync::Arc;

/// An active fixture endpoint subscribed to `alert.fired`, one published event, and the
/// router; returns the router and the delivery id.
async fn setup(store: Arc<impl Store>) -> (axum::Router, String) {
    seed_keys(store.as_ref()).await;
    let mut endpoint = fixture_endpoint();
    endpoint.is_active = true;
    endpoint.paused_by = None;
    store_fixture_endpoint(store.as_ref(), &endpoint).await;
    let r = router(store);
    let published = send(&r, "endpoints-test.json", |_| {}).await;
    assert_eq!(published.status, 202, "{}", published.json);
    let delivery = published.json["delivery_id"]
        .as_str()
        .expect("delivery id")
        .to_owned();
    (r, delivery)
}

fn delivery_path(id: &str) -> String {
    format!("/org/acme/webhooks/deliveries/{id}")
}

async fn roles_and_scoping(store: Arc<impl Store>) {
    let (r, delivery) = setup(store).await;
    // Publishing: admin and publisher yes, member no, another org's key 404.
    assert_eq!(
        send(&r, "events-publish.json", |e| set_key(e, Some(ADMIN_KEY)))
            .await
            .status,
        202
    );
    let member = send(&r, "events-publish.json", |e| set_key(e, Some(MEMBER_KEY))).await;
    assert_error(&member, 403, "forbidden");
    let other = send(&r, "events-publish.json", |e| {
        set_key(e, Some(OTHER_ORG_ADMIN_KEY))
    })
    .await;
    assert_error(&other, 404, "not_found");
    let anonymous = send(&r, "events-publish.json", |e| set_key(e, None)).await;
    assert_error(&anonymous, 401, "unauthorized");

    // Reading deliveries: admin and member yes, publisher no.
    for (key, status) in [
        (ADMIN_KEY, 200),
        (MEMBER_KEY, 200),
        (PUBLISHER_KEY, 403),
        (OTHER_ORG_ADMIN_KEY, 404),
    ] {
        let list = send(&r, "deliveries-list.json", |e| set_key(e, Some(key))).await;
        assert_eq!(list.status, status, "{key}: {}", list.json);
        let detail = send(&r, "deliveries-get.json", |e| {
            set_key(e, Some(key));
            set_path(e, &delivery_path(&delivery));
        })
        .await;
        assert_eq!(detail.status, status, "{key}: {}", detail.json);
    }
    // Retrying and testing are admin writes.
    for key in [MEMBER_KEY, PUBLISHER_KEY] {
        let retry = send(&r, "deliveries-retry.json", |e| set_key(e, Some(key))).await;
        assert_error(&retry, 403, "forbidden");
        let test = send(&r, "endpoints-test.json", |e| set_key(e, Some(key))).await;
        assert_error(&test, 403, "forbidden");
    }
    // Another org's admin, on its own org's path, cannot reach acme's delivery.
    let foreign = send(&r, "deliveries-get.json", |e| {
        set_key(e, Some(OTHER_ORG_ADMIN_KEY));
        set_path(e, &format!("/org/other/webhooks/deliveries/{delivery}"));
    })
    .await;
    assert_error(&foreign, 404, "not_found");
    let foreign_retry = send(&r, "deliveries-retry.json", |e| {
        set_key(e, Some(OTHER_ORG_ADMIN_KEY));
        set_path(
            e,
            &format!("/org/other/webhooks/deliveries/{delivery}/retry"),
        );
    })
    .await;
    assert_error(&foreign_retry, 404, "not_found");
}

async fn unknown_and_malformed_ids(store: Arc<impl Store>) {
    let (r, _) = setup(store).await;
    for id in ["nope", "00000000-0000-7000-8000-000000000000"] {
        let detail = send(&r, "deliveries-get.json", |e| {
            set_path(e, &delivery_path(id))
        })
        .await;
        assert_error(&detail, 404, "not_found");
        let retry = send(&r, "deliveries-retry.json", |e| {
            set_path(e, &format!("{}/retry", delivery_path(id)))
        })
        .await;
        assert_error(&retry, 404, "not_found");
        let list = send(&r, "deliveries-list.json", |e| {
            set_path(e, &format!("/org/acme/webhooks/endpoints/{id}/deliveries"))
        })
        .await;
        assert_error(&list, 404, "not_found");
        let test = send(&r, "endpoints-test.json", |e| {
            set_path(e, &format!("/org/acme/webhooks/endpoints/{id}/test"))
        })
        .await;
        assert_error(&test, 404, "not_found");
    }
}

async fn paging_queries(store: Arc<impl Store>) {
    let (r, _) = setup(store).await;
    for query in [
        "page=0",
        "page=x",
        "per_page=0",
        "per_page=101",
        "per_page=-3",
        "page=1.5",
    ] {
        let a = send(&r, "deliveries-list.json", |e| {
            e["rawQueryString"] = query.into()
        })
        .await;
        assert_error(&a, 400, "bad_request");
        let name = query.split('=').next().expect("name");
        assert_eq!(a.json["error"]["field"], name, "{query}");
    }
    // A parameter the route does not take is refused by name, never silently dropped.
    for (query, field) in [
        ("status=failed", "status"),
        ("page=1&perpage=5", "perpage"),
        ("page=1&page=2", "page"),
    ] {
        let a = send(&r, "deliveries-list.json", |e| {
            e["rawQueryString"] = query.into()
        })
        .await;
        assert_error(&a, 400, "bad_request");
        assert_eq!(a.json["error"]["field"], field, "{query}");
    }
    let past_the_end = send(&r, "deliveries-list.json", |e| {
        e["rawQueryString"] = "page=99".into()
    })
    .await;
    assert_eq!(past_the_end.status, 200);
    assert_eq!(past_the_end.json["deliveries"], json!([]));
    assert_eq!(past_the_end.json["total"], 1);
    let defaults = send(&r, "deliveries-list.json", |e| {
        e["rawQueryString"] = "".into()
    })
    .await;
    assert_eq!(
        (
            defaults.json["page"].as_u64(),
            defaults.json["per_page"].as_u64()
        ),
        (Some(1), Some(20))
    );
}

async fn publish_validation(store: Arc<impl Store>) {
    let (r, _) = setup(store).await;
    let cases = [
        (json!({"data": {}}), "type"),
        (json!({"type": "Bad Type", "data": {}}), "type"),
        (json!({"type": "a.b"}), "data"),
        (json!({"type": "a.b", "data": [1]}), "data"),
        (json!({"type": "a.b", "data": "text"}), "data"),
        (
            json!({"type": "a.b", "data": {"big": "x".repeat(257 * 1024)}}),
            "data",
        ),
        (json!({"type": "a.b", "data": {}, "id": ""}), "id"),
        (json!({"type": "a.b", "data": {}, "id": "has space"}), "id"),
        (
            json!({"type": "a.b", "data": {}, "id": "x".repeat(129)}),
            "id",
        ),
        (json!({"type": "a.b", "data": {}, "id": 7}), "id"),
    ];
    for (body, field) in &cases {
        let a = send(&r, "events-publish.json", |e| {
            set_body(e, &body.to_string())
        })
        .await;
        assert_error(&a, 422, "validation_failed");
        assert_eq!(a.json["error"]["field"], *field, "{}", a.json);
    }
    for body in ["", "{", "[]"] {
        let a = send(&r, "events-publish.json", |e| set_body(e, body)).await;
        assert_error(&a, 400, "bad_request");
    }
    let extra = json!({"type": "a.b", "data": {}, "extra": true}).to_string();
    let a = send(&r, "events-publish.json", |e| set_body(e, &extra)).await;
    assert_error(&a, 400, "bad_request");
    assert_eq!(a.json["error"]["field"], "extra");
    let bad_type = json!({"type": "Bad", "data": {}}).to_string();
    let a = send(&r, "events-publish.json", |e| set_body(e, &bad_type)).await;
    assert_eq!(
        a.json["error"]["message"],
        r"must match [a-z0-9_]+(\.[a-z0-9_]+)* and be at most 100 characters"
    );
    let huge = json!({"type": "a.b", "data": {"x": "y".repeat(600 * 1024)}}).to_string();
    let a = send(&r, "events-publish.json", |e| set_body(e, &huge)).await;
    assert_error(&a, 413, "payload_too_large");
    // An event nobody subscribes to is accepted with no deliveries.
    let nobody = json!({"type": "nobody.listens", "data": {}}).to_string();
    let a = send(&r, "events-publish.json", |e| set_body(e, &nobody)).await;
    assert_eq!(a.status, 202);
    assert_eq!(a.json["deliveries"], 0);
}

on_both_backends!(
    roles_and_scoping,
    unknown_and_malformed_ids,
    paging_queries,
    publish_validation
);
