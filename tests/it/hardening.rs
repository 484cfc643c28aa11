//! Regression tests for defects found by hostile testing: each failed before its fix.
//! On both backends.

use crate::common::*;
use crate::pipeline::{Harness, Options};
use serde_json::{Value, json};
use shared::domain::DeliverySeq;
use shared::pipeline::Handled;
use std::sync::Arc;
use std::time::Duration;
use testkit::{Behaviour, Reply};

const STEP: Duration = Duration::from_secs(10);

/// What is validated is what is stored and sent: URLs a WHATWG parser would silently
/// rewrite are refused, and the rest is stored normalised.
async fn urls_are_stored_as_they_will_be_sent(store: Arc<impl Store>) {
    let r = fixture_router(store.clone()).await;
    let create = |url: &str| json!({"url": url, "event_types": ["a.b"]}).to_string();
    for bad in [
        "https://local\thost:8443/x",
        "https://example.com/a\nb",
        " https://example.com/",
        "https://example.com/ ",
        "https://example.com\\@evil.example.com/",
        "https://example.com/\u{a0}",
    ] {
        let a = send(&r, "endpoints-create.json", |e| set_body(e, &create(bad))).await;
        assert_error(&a, 422, "validation_failed");
        assert_eq!(a.json["error"]["field"], "url", "{bad:?}");
        let p = send(&r, "endpoints-update.json", |e| {
            set_body(e, &json!({ "url": bad }).to_string())
        })
        .await;
        assert_error(&p, 422, "validation_failed");
    }
    let a = send(&r, "endpoints-create.json", |e| {
        set_body(e, &create("https://Hooks.EXAMPLE.com:443/in/../ü"))
    })
    .await;
    assert_eq!(a.status, 201, "{}", a.json);
    assert_eq!(a.json["url"], "https://hooks.example.com/%C3%BC");
    let id = a.json["id"].as_str().expect("id").parse().expect("uuid");
    let stored = store.get_endpoint(&acme(), id).await.expect("get");
    assert_eq!(
        stored.map(|e| e.url).as_deref(),
        Some("https://hooks.example.com/%C3%BC")
    );
    // The 2048 limit counts characters, not bytes.
    let wide = format!("https://example.com/{}", "é".repeat(2048 - 20));
    let a = send(&r, "endpoints-create.json", |e| set_body(e, &create(&wide))).await;
    assert_eq!(a.status, 201, "{}", a.json);
}

/// A body over 512 KiB is refused before anything happens, on routes that take no body
/// too.
async fn oversized_bodies_do_nothing_anywhere(store: Arc<impl Store>) {
    seed_fixtures(store.as_ref()).await;
    let (r, mut jobs) = router_with_queue(store.clone());
    let huge = "x".repeat(600 * 1024);
    let before = stored_fixture_endpoint(store.as_ref()).await;
    for fixture in [
        "endpoints-rotate-secret.json",
        "endpoints-test.json",
        "endpoints-delete.json",
        "endpoints-list.json",
        "deliveries-retry.json",
        "deliveries-get.json",
    ] {
        let a = send(&r, fixture, |e| set_body(e, &huge)).await;
        assert_error(&a, 413, "payload_too_large");
        assert_eq!(a.headers["connection"], "close", "{fixture}");
        // Refused before authentication too.
        let a = send(&r, fixture, |e| {
            set_body(e, &huge);
            set_key(e, None);
        })
        .await;
        assert_error(&a, 413, "payload_too_large");
    }
    let after = stored_fixture_endpoint(store.as_ref()).await;
    assert_eq!(after.secret, before.secret, "not rotated");
    assert_eq!(after.delivery_seq, DeliverySeq(0), "no test delivery");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), jobs.recv())
            .await
            .is_err(),
        "nothing was queued"
    );
}

/// Same id, same content: the first answer. Same id, other content: 409, nothing made.
async fn a_reused_event_id_with_other_content_conflicts(store: Arc<impl Store>) {
    let r = fixture_router(store.clone()).await;
    let publish = |body: Value| {
        let body = body.to_string();
        let r = r.clone();
        async move { send(&r, "events-publish.json", |e| set_body(e, &body)).await }
    };
    let first = publish(json!({"id": "evt_x", "type": "a.b", "data": {"n": 1.50, "k": [1]}})).await;
    assert_eq!(first.status, 202, "{}", first.json);
    let same = publish(json!({"id": "evt_x", "type": "a.b", "data": {"k": [1], "n": 1.5}})).await;
    assert_eq!((same.status, &same.json), (202, &first.json));
    for other in [
        json!({"id": "evt_x", "type": "a.c", "data": {"n": 1.5, "k": [1]}}),
        json!({"id": "evt_x", "type": "a.b", "data": {"n": 2, "k": [1]}}),
        json!({"id": "evt_x", "type": "a.b", "data": {}}),
    ] {
        let a = publish(other.clone()).await;
        assert_error(&a, 409, "event_id_reused");
        assert_eq!(a.json["error"]["field"], "id", "{other}");
    }
    let stored = store.get_event(&acme(), "evt_x").await.expect("get");
    assert_eq!(stored.map(|e| e.event_type).as_deref(), Some("a.b"));
}

/// Concurrent publishes of the same ids create each delivery once, and take one
/// sequence number each: `total` and page sizes stay exact. A repeat that finds the
/// writer still at work after its wait answers 409 `publish_in_progress` and the client
/// retries, as documented: under this load moto takes seconds per publish (a repeat now
/// looks for the written deliveries, where it read one flag before), so a repeat may
/// outwait its 5 s. Whatever the interleaving, every publish ends in the same 202.
async fn concurrent_repeats_take_no_extra_sequence_numbers(store: Arc<impl Store>) {
    let r = fixture_router(store.clone()).await;
    let create = json!({"url": "https://example.com/hook", "event_types": ["a.b"]}).to_string();
    let a = send(&r, "endpoints-create.json", |e| set_body(e, &create)).await;
    let endpoint_id = a.json["id"].as_str().expect("id").to_owned();
    const EVENTS: usize = 60;
    let mut tasks = Vec::new();
    for n in 0..EVENTS {
        for _ in 0..3 {
            let r = r.clone();
            let body =
                json!({"id": format!("evt_{n}"), "type": "a.b", "data": {"n": n}}).to_string();
            tasks.push(tokio::spawn(async move {
                for _ in 0..20 {
                    let a = send(&r, "events-publish.json", |e| set_body(e, &body)).await;
                    if a.status != 409 || a.json["error"]["code"] != "publish_in_progress" {
                        return a;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                panic!("still in progress after 20 tries");
            }));
        }
    }
    for t in tasks {
        let a = t.await.expect("task");
        assert_eq!(a.status, 202, "{}", a.json);
        assert_eq!(a.json["deliveries"], 1, "{}", a.json);
    }
    let stored = store
        .get_endpoint(&acme(), endpoint_id.parse().expect("uuid"))
        .await
        .expect("get")
        .expect("there");
    assert_eq!(
        stored.delivery_seq,
        DeliverySeq(EVENTS as u64),
        "one number per delivery"
    );
    let path = format!("/org/acme/webhooks/endpoints/{endpoint_id}/deliveries");
    let mut seen = std::collections::BTreeSet::new();
    for page in 1..=3 {
        let a = send(&r, "deliveries-list.json", |e| {
            set_path(e, &path);
            e["rawQueryString"] = format!("page={page}&per_page=20").into();
        })
        .await;
        assert_eq!(a.json["total"], EVENTS, "{}", a.json);
        let items = a.json["deliveries"].as_array().expect("list");
        assert_eq!(items.len(), 20, "page {page} is full");
        seen.extend(items.iter().map(|d| d["event_id"].to_string()));
    }
    assert_eq!(seen.len(), EVENTS);
}

/// A success resets the failure count even when the endpoint, as read before the POST,
/// showed no failures: a concurrent attempt failed in between.
async fn a_late_success_resets_an_early_failure(store: Arc<impl Store>) {
    let mut h = Harness::start(
        store,
        Behaviour::from_fn(|request| {
            if request.body_text().contains("evt_fails") {
                Reply::status(500)
            } else {
                Reply::ok().delay(Duration::from_millis(800))
            }
        }),
        Options::default(),
    )
    .await;
    let (endpoint_id, _) = h.endpoint(&["alert.fired"]).await;
    h.publish("evt_succeeds_late").await;
    h.publish("evt_fails").await;
    let slow = h.next_job(STEP).await.expect("first job");
    let fast = h.next_job(STEP).await.expect("second job");
    let (a, b) = tokio::join!(h.sender.handle(slow, false), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        h.sender.handle(fast, false).await
    });
    assert!(matches!(a.expect("handled"), Handled::Attempted { .. }));
    assert!(matches!(b.expect("handled"), Handled::Attempted { .. }));
    assert_eq!(
        h.stored_endpoint(&endpoint_id).await.consecutive_failures,
        0,
        "the last attempt to finish succeeded"
    );
}

on_both_backends!(
    urls_are_stored_as_they_will_be_sent,
    oversized_bodies_do_nothing_anywhere,
    a_reused_event_id_with_other_content_conflicts,
    a_late_success_resets_an_early_failure,
);

/// Real concurrency (a multi-threaded runtime), so repeats interleave on both stores.
mod concurrent {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn memory_store() {
        super::concurrent_repeats_take_no_extra_sequence_numbers(crate::common::memory().await)
            .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn dynamodb() {
        super::concurrent_repeats_take_no_extra_sequence_numbers(crate::common::dynamo().await)
            .await
    }
}
