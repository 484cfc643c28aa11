//! The routes behind the web console's chart and recovery, through their `events/`
//! fixtures, the real sender and an HTTPS receiver, on both backends: hourly statistics
//! count what the sender recorded; a recovery re-sends exactly the failed deliveries of
//! its window, a chunk at a time, once.

use crate::common::*;
use crate::pipeline::{Harness, Options, attempted};
use chrono::{Duration as Span, Utc};
use serde_json::{Value, json};
use shared::domain::recovery::{Recovery, RecoveryStatus, STALLED_AFTER, failed_position};
use shared::domain::stats::hour_of;
use shared::domain::{DeliveryStatus, Job};
use shared::pipeline::Handled;
use shared::ports::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use testkit::{Behaviour, Reply};

const STEP: Duration = Duration::from_secs(5);

fn stats_path(endpoint_id: &str) -> String {
    format!("/org/acme/webhooks/endpoints/{endpoint_id}/stats")
}

async fn stats(h: &Harness<impl Store>, endpoint_id: &str, window: &str) -> Value {
    let path = stats_path(endpoint_id);
    let a = send(&h.router, "endpoints-stats.json", |e| {
        set_path(e, &path);
        set_query(e, &[("window", window)]);
    })
    .await;
    assert_eq!(a.status, 200, "{}", a.json);
    a.json
}

/// A statistics answer's attempts over its whole window: (succeeded, failed).
fn attempt_totals(stats: &Value) -> (u64, u64) {
    let buckets = stats["buckets"].as_array().expect("buckets");
    let sum = |key: &str| {
        buckets
            .iter()
            .map(|b| b[key].as_u64().expect("count"))
            .sum::<u64>()
    };
    (sum("succeeded"), sum("failed"))
}

async fn recover(h: &Harness<impl Store>, endpoint_id: &str, body: Value) -> Answer {
    let path = format!("/org/acme/webhooks/endpoints/{endpoint_id}/recover");
    let body = body.to_string();
    send(&h.router, "endpoints-recover.json", |e| {
        set_path(e, &path);
        set_body(e, &body);
    })
    .await
}

async fn recovery(h: &Harness<impl Store>, id: &str) -> Answer {
    let path = format!("/org/acme/webhooks/recoveries/{id}");
    send(&h.router, "recoveries-get.json", |e| set_path(e, &path)).await
}

/// Every attempt the sender records is counted in its hour, successes and failures
/// apart; the window has every hour, oldest first, and ends with the current one.
async fn statistics_count_every_attempt_in_its_hour(store: Arc<impl Store>) {
    let options = Options {
        retry: vec![1],
        ..Options::default()
    };
    let behaviour = Behaviour::sequence([Reply::status(500)], Reply::ok());
    let mut h = Harness::start(store, behaviour, options).await;
    let (endpoint_id, _) = h.endpoint(&["alert.fired"]).await;
    let empty = stats(&h, &endpoint_id, "24h").await;
    let buckets = empty["buckets"].as_array().expect("buckets");
    assert_eq!(buckets.len(), 24);
    assert!(
        buckets
            .iter()
            .all(|b| b["succeeded"] == 0 && b["failed"] == 0)
    );

    h.publish("evt_stats_1").await;
    h.publish("evt_stats_2").await;
    // The first attempt of one fails (500) and its retry succeeds; the other succeeds.
    for _ in 0..3 {
        assert!(matches!(h.step(STEP).await, Handled::Attempted { .. }));
    }
    let hour_before = shared::domain::time::format(&hour_of(Utc::now()));
    let day = stats(&h, &endpoint_id, "24h").await;
    let hour_after = shared::domain::time::format(&hour_of(Utc::now()));
    assert_eq!(day["endpoint_id"], endpoint_id.as_str());
    assert_eq!(day["window"], "24h");
    let buckets = day["buckets"].as_array().expect("buckets");
    assert_eq!(buckets.len(), 24);
    let last = buckets[23]["start"].as_str().expect("start");
    assert!(
        last == hour_before || last == hour_after,
        "the window ends with the current hour: {last}"
    );
    // The attempts may straddle an hour: count the whole window.
    assert_eq!(attempt_totals(&day), (2, 1), "{day}");
    let starts: Vec<&str> = buckets
        .iter()
        .map(|b| b["start"].as_str().expect("start"))
        .collect();
    assert!(starts.windows(2).all(|w| w[0] < w[1]), "oldest first");

    let week = stats(&h, &endpoint_id, "7d").await;
    assert_eq!(week["buckets"].as_array().expect("buckets").len(), 168);
    assert_eq!(week["buckets"][167], day["buckets"][23]);

    // A bad window, an unknown endpoint, a wrong org.
    let path = stats_path(&endpoint_id);
    let bad = send(&h.router, "endpoints-stats.json", |e| {
        set_path(e, &path);
        set_query(e, &[("window", "30d")]);
    })
    .await;
    assert_error(&bad, 400, "bad_request");
    assert_eq!(bad.json["error"]["field"], "window");
    let unknown = stats_path(&uuid::Uuid::now_v7().to_string());
    let missing = send(&h.router, "endpoints-stats.json", |e| set_path(e, &unknown)).await;
    assert_error(&missing, 404, "not_found");
    // Another organisation's admin, on its own org's path: not found.
    let foreign = path.replace("/org/acme/", "/org/other/");
    let other = send(&h.router, "endpoints-stats.json", |e| {
        set_path(e, &foreign);
        set_key(e, Some(OTHER_ORG_ADMIN_KEY));
    })
    .await;
    assert_error(&other, 404, "not_found");
}

/// A recovery counts (dry run), then re-sends, exactly the failed deliveries created in
/// its window as manual attempts; its job handled twice re-sends nothing twice.
async fn a_recovery_resends_the_failed_deliveries_of_its_window(store: Arc<impl Store>) {
    // One attempt per delivery: a 500 fails it for good.
    let options = Options {
        retry: vec![],
        ..Options::default()
    };
    let mut h = Harness::start(store, Behaviour::always(Reply::status(500)), options).await;
    let (endpoint_id, _) = h.endpoint(&["alert.fired"]).await;
    let before = Utc::now();
    for n in 0..3 {
        h.publish(&format!("evt_recover_{n}")).await;
        assert_eq!(h.step(STEP).await, attempted(DeliveryStatus::Failed, 1));
    }
    let since = shared::domain::time::format(&(before - Span::seconds(1)));
    // An endpoint that only failed in an hour is counted too.
    let day = stats(&h, &endpoint_id, "24h").await;
    assert_eq!(attempt_totals(&day), (0, 3), "{day}");

    // The store lists them in order, a limited read at a time.
    let number = h.stored_endpoint(&endpoint_id).await.number;
    let until = Utc::now() + Span::seconds(1);
    let window_start = before - Span::seconds(1);
    // Two at a time, from `after` on.
    let store = &h.store;
    let failed = |since, until, after| async move {
        store
            .failed_deliveries(number, since, until, after, 2)
            .await
            .expect("read")
    };
    let (first, more) = failed(window_start, until, None).await;
    assert_eq!((first.len(), more), (2, true));
    let (rest, more) = failed(window_start, until, first.last().map(failed_position)).await;
    assert_eq!((rest.len(), more), (1, false));
    assert!(
        first
            .iter()
            .chain(&rest)
            .all(|d| d.status == DeliveryStatus::Failed)
    );
    // A window that ends before it starts is empty, not an error.
    let (none, more) = failed(until, window_start, None).await;
    assert_eq!((none.len(), more), (0, false));

    // Dry runs: the whole window; one whose `until` is far ahead, which ends at the
    // request (nothing is created later); one that ends before any of them; one that ends
    // before it starts, which is empty.
    let early = shared::domain::time::format(&(before - Span::hours(1)));
    for (window, count) in [
        (json!({"since": since}), 3),
        (json!({"since": since, "until": "2400-01-01T00:00:00Z"}), 3),
        (json!({"since": early, "until": since}), 0),
        (json!({"since": since, "until": early}), 0),
    ] {
        let mut body = window.clone();
        body["dry_run"] = true.into();
        let counted = recover(&h, &endpoint_id, body).await;
        assert_eq!(counted.status, 200, "{window}: {}", counted.json);
        assert_eq!(
            counted.json,
            json!({ "count": count, "capped": false }),
            "{window}"
        );
    }
    // A count reads no further than it is asked to (a dry run stops at its cap).
    for (at_most, counted) in [(0, 0), (1, 1), (2, 2), (3, 3), (10, 3)] {
        let n = store
            .count_failed(number, window_start, until, at_most)
            .await
            .expect("count");
        assert_eq!(n, counted, "at most {at_most}");
    }

    // Bad requests.
    for (body, field) in [
        (json!({"dry_run": true}), "since"),
        (json!({"since": "yesterday"}), "since"),
        (json!({"since": since, "until": "tomorrow"}), "until"),
    ] {
        let a = recover(&h, &endpoint_id, body).await;
        assert_error(&a, 422, "validation_failed");
        assert_eq!(a.json["error"]["field"], field);
    }
    let path = format!("/org/acme/webhooks/endpoints/{endpoint_id}/recover");
    let as_member = send(&h.router, "endpoints-recover.json", |e| {
        set_path(e, &path);
        set_key(e, Some(MEMBER_KEY));
    })
    .await;
    assert_error(&as_member, 403, "forbidden");

    // The real thing, with the receiver fixed.
    h.receiver.set_behaviour(Behaviour::always(Reply::ok()));
    let started = recover(&h, &endpoint_id, json!({"since": since})).await;
    assert_eq!(started.status, 202, "{}", started.json);
    assert_eq!(started.json["status"], "running");
    let id = started.json["recovery_id"].as_str().expect("id").to_owned();
    // One at a time per endpoint: a second start is refused, naming the running one;
    // a dry run is still answered.
    let second = recover(&h, &endpoint_id, json!({"since": since})).await;
    assert_error(&second, 409, "recovery_running");
    let message = second.json["error"]["message"].as_str().expect("message");
    assert!(message.contains(&id), "{message}");
    let counted = recover(&h, &endpoint_id, json!({"since": since, "dry_run": true})).await;
    assert_eq!(counted.json, json!({"count": 3, "capped": false}));
    let running = recovery(&h, &id).await;
    assert_eq!(running.status, 200, "{}", running.json);
    assert_eq!(running.json["status"], "running");
    assert_eq!(running.json["queued"], 0);
    assert_eq!(running.json["endpoint_id"], endpoint_id.as_str());
    assert_eq!(running.json["finished_at"], Value::Null);

    let job = h.next_job(STEP).await.expect("the recovery job");
    assert!(matches!(job, Job::RecoverEndpoint { .. }), "{job:?}");
    assert_eq!(
        h.sender.handle(job.clone(), false).await.expect("handled"),
        Handled::Chunk {
            done: 3,
            more: false
        }
    );
    // The same message again: the recovery is done, nothing more is re-sent.
    assert_eq!(
        h.sender.handle(job, true).await.expect("handled"),
        Handled::Skipped
    );
    for _ in 0..3 {
        let job = h.next_job(STEP).await.expect("a manual job");
        assert!(matches!(job, Job::Deliver { .. }), "{job:?}");
        assert_eq!(
            h.sender.handle(job, false).await.expect("handled"),
            attempted(DeliveryStatus::Succeeded, 2)
        );
    }
    assert!(h.next_job(Duration::from_millis(300)).await.is_none());
    assert_eq!(
        h.receiver.requests().len(),
        6,
        "three failures, three re-sends"
    );
    let done = recovery(&h, &id).await;
    assert_eq!(done.json["status"], "done", "{}", done.json);
    assert_eq!(done.json["queued"], 3);
    assert!(done.json["finished_at"].is_string());
    let listed = h.deliveries_of(&endpoint_id).await;
    for d in listed["deliveries"].as_array().expect("deliveries") {
        assert_eq!(d["status"], "succeeded", "{d}");
    }
    // Recovered, they are no longer failed: a new dry run finds none.
    let after = recover(&h, &endpoint_id, json!({"since": since, "dry_run": true})).await;
    assert_eq!(after.json, json!({"count": 0, "capped": false}));
    // Done, it no longer holds the endpoint: the next recovery starts (and finds nothing).
    let next = recover(&h, &endpoint_id, json!({"since": since})).await;
    assert_eq!(next.status, 202, "{}", next.json);
    assert_ne!(next.json["recovery_id"], id.as_str());

    // Unknown and foreign recoveries are 404.
    let unknown = recovery(&h, &uuid::Uuid::now_v7().to_string()).await;
    assert_error(&unknown, 404, "not_found");
    let foreign = [
        (
            "recoveries-get.json",
            format!("/org/other/webhooks/recoveries/{id}"),
        ),
        (
            "endpoints-recover.json",
            format!("/org/other/webhooks/endpoints/{endpoint_id}/recover"),
        ),
    ];
    for (fixture, path) in foreign {
        let other = send(&h.router, fixture, |e| {
            set_path(e, &path);
            set_key(e, Some(OTHER_ORG_ADMIN_KEY));
        })
        .await;
        assert_error(&other, 404, "not_found");
    }
}

/// Concurrent starts on one endpoint: exactly one runs, the others are refused naming it;
/// another endpoint is not held; a recovery that stalled (its job lost) holds nothing.
async fn one_recovery_runs_per_endpoint(store: Arc<impl Store>) {
    let h = Harness::start(store, Behaviour::always(Reply::ok()), Options::default()).await;
    let (endpoint_id, _) = h.endpoint(&["alert.fired"]).await;
    let (other_endpoint, _) = h.endpoint(&["alert.fired"]).await;
    let since = shared::domain::time::format(&(Utc::now() - Span::hours(1)));
    let body = json!({ "since": since });
    let start = || recover(&h, &endpoint_id, body.clone());
    let (a, b, c, d) = tokio::join!(start(), start(), start(), start());
    let answers = [a, b, c, d];
    let started: Vec<&Answer> = answers.iter().filter(|a| a.status == 202).collect();
    assert_eq!(
        started.len(),
        1,
        "{:?}",
        answers.iter().map(|a| &a.json).collect::<Vec<_>>()
    );
    let id = started[0].json["recovery_id"].as_str().expect("id");
    for refused in answers.iter().filter(|a| a.status != 202) {
        assert_error(refused, 409, "recovery_running");
        let message = refused.json["error"]["message"].as_str().expect("message");
        assert!(message.contains(id), "{message}");
    }
    let elsewhere = recover(&h, &other_endpoint, body.clone()).await;
    assert_eq!(elsewhere.status, 202, "{}", elsewhere.json);

    // A recovery of a third endpoint that has not moved for longer than the stall limit
    // (written straight to the store) does not hold it.
    let (third, _) = h.endpoint(&["alert.fired"]).await;
    let stored = h.stored_endpoint(&third).await;
    let long_ago = Utc::now() - STALLED_AFTER - Span::minutes(1);
    let stalled = Recovery {
        id: uuid::Uuid::now_v7(),
        org: acme(),
        endpoint_id: stored.id,
        endpoint_number: stored.number,
        since: long_ago,
        until: long_ago,
        status: RecoveryStatus::Running,
        queued: 0,
        created_at: long_ago,
        updated_at: long_ago,
        finished_at: None,
        position: None,
    };
    h.store
        .insert_recovery(&stalled, None)
        .await
        .expect("insert");
    assert!(matches!(
        h.store.insert_recovery(&stalled, None).await,
        Err(StoreError::AlreadyExists)
    ));
    let after_stall = recover(&h, &third, body).await;
    assert_eq!(after_stall.status, 202, "{}", after_stall.json);
    assert_eq!(
        h.store.latest_recovery_id(stored.id).await.expect("read"),
        after_stall.json["recovery_id"]
            .as_str()
            .and_then(|id| id.parse().ok())
    );
}

on_both_backends!(
    statistics_count_every_attempt_in_its_hour,
    a_recovery_resends_the_failed_deliveries_of_its_window,
    one_recovery_runs_per_endpoint,
);

/// The console's fixtures, as `endpoints-api` serves them: `/console` and `/console/`
/// are the page; its files come with the security headers; an unknown file is the API's
/// JSON 404.
#[tokio::test]
async fn console_fixtures_serve_the_page_with_its_policy() {
    let router = shared::api::finish(console::routes(
        console::FrameAncestors::parse(Some("https://app.example.com")).expect("origin"),
    ));
    let get = |fixture: &str, path: Option<&str>| {
        let mut event = fixture_json(fixture);
        if let Some(path) = path {
            set_path(&mut event, path);
        }
        let router = router.clone();
        async move {
            let (status, headers, body) =
                testkit::in_process::ask(router, lambda_request(&event)).await;
            (status, headers, String::from_utf8_lossy(&body).into_owned())
        }
    };
    // Portal links point where the console is served.
    assert_eq!(shared::api::portal::CONSOLE_PATH, console::CONSOLE_PATH);
    let (status, _, bare) = get("console-get.json", None).await;
    assert_eq!(status, 200);
    let (status, headers, page) = get("console-get.json", Some("/console/")).await;
    assert_eq!(status, 200);
    assert_eq!(bare, page);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/html")
    );
    assert!(page.contains("/console/app.js"), "{page}");
    let csp = headers["content-security-policy"].to_str().unwrap_or("");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(
        csp.ends_with("frame-ancestors https://app.example.com"),
        "{csp}"
    );

    let (status, headers, script) = get("console-file.json", None).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/javascript")
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(!script.is_empty());

    let (status, _, body) = get("console-file.json", Some("/console/secrets.txt")).await;
    assert_eq!(status, 404);
    let body: Value = serde_json::from_str(&body).expect("a JSON error");
    assert_eq!(body["error"]["code"], "not_found");
}
