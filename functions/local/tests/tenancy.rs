//! Tenancy on the local server (docs/DESIGN.md, "The local queue"): the real binary, real
//! HTTPS receivers, everything counted at the receivers. Its queue serves organisations
//! (and endpoints) in turns, holds at most `LOCAL_QUEUE_LIMIT` jobs (a publish past that
//! is refused with 503 `overloaded` and stores nothing), and never has more than
//! `ENDPOINT_MAX_IN_FLIGHT` attempts to one endpoint under way.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use support::{Server, ServerBuilder};
use testkit::{HttpsReceiver, RecordedRequest, Reply, TempDir, TestCa};

const KEY_A: &str = "avk_tenancy_org_a_admin";
const KEY_B: &str = "avk_tenancy_org_b_admin";

/// The server with keys for orgs `a` (the bearer key) and `b`, trusting `ca`.
fn start(ca: &std::path::Path, builder: ServerBuilder) -> Server {
    builder
        .key("a", "admin", KEY_A)
        .key("b", "admin", KEY_B)
        .root_cert(ca)
        .kill_after(Duration::from_secs(120))
        .start()
}

/// An endpoint of `org` (with its key) at `url`, for `alert.fired`; its id.
async fn endpoint(server: &Server, org: &str, key: &str, url: &str) -> String {
    let body = json!({"url": url, "event_types": ["alert.fired"]});
    let (status, created) = server
        .request_as(
            Some(key),
            Method::POST,
            &format!("/org/{org}/webhooks/endpoints"),
            Some(&body),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("id").to_owned()
}

fn event(id: &str) -> Value {
    json!({"id": id, "type": "alert.fired", "data": {"id": id}})
}

/// A publish as org `org` with `key`: the status, `Retry-After` if any, and the body.
async fn publish(server: &Server, org: &str, key: &str, id: &str) -> (u16, Option<u64>, Value) {
    let request = server
        .http()
        .post(server.url(&format!("/org/{org}/webhooks/events")))
        .bearer_auth(key)
        .json(&event(id));
    let (status, headers, body) = server.send_reading_headers(request).await;
    let retry_after = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, retry_after, body)
}

/// The event id each request carried (the envelope's `id`).
fn event_id(request: &RecordedRequest) -> String {
    let body: Value = serde_json::from_slice(&request.body).expect("a JSON envelope");
    body["id"].as_str().expect("id").to_owned()
}

/// Every event id among org `a`'s deliveries, read page by page through the search.
async fn stored_event_ids(server: &Server) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/org/a/webhooks/deliveries?limit=100".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = server.get(&path).await;
        assert_eq!(status, 200, "{page}");
        for d in page["deliveries"].as_array().expect("deliveries") {
            ids.insert(d["event_id"].as_str().expect("event_id").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

/// A trusted CA written to a temporary directory, and the directory.
fn trusted(ca: &TestCa) -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new("tenancy");
    let path = ca.write_pem(dir.path());
    (dir, path)
}

/// A queue limit of 50 and a slow receiver, publishes far faster than it drains: some are
/// refused (503 `overloaded`, `Retry-After`) and nothing of them is stored; each refused
/// one is accepted when sent again later; every accepted event arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_refuses_publishes_storing_nothing_and_loses_nothing() {
    const EVENTS: usize = 150;
    let ca = TestCa::new();
    let (_dir, ca_path) = trusted(&ca);
    let receiver =
        HttpsReceiver::start_with_ca(&ca, Reply::ok().delay(Duration::from_millis(100))).await;
    let server = Arc::new(start(
        &ca_path,
        Server::builder().env("LOCAL_QUEUE_LIMIT", "50"),
    ));
    endpoint(&server, "a", KEY_A, &receiver.url("/hook")).await;

    // Concurrent publishes: the bound holds against racing admissions too.
    let mut publishing = tokio::task::JoinSet::new();
    for worker in 0..10 {
        let server = server.clone();
        publishing.spawn(async move {
            let mut answers = Vec::new();
            for n in (worker..EVENTS).step_by(10) {
                let id = format!("evt_{n:03}");
                let (status, retry_after, body) = publish(&server, "a", KEY_A, &id).await;
                answers.push((id, status, retry_after, body));
            }
            answers
        });
    }
    let mut refused = BTreeSet::new();
    let mut accepted = BTreeSet::new();
    while let Some(answers) = publishing.join_next().await {
        for (id, status, retry_after, body) in answers.expect("publisher") {
            match status {
                202 => {
                    accepted.insert(id);
                }
                503 => {
                    assert_eq!(body["error"]["code"], "overloaded", "{body}");
                    assert!(
                        retry_after.is_some_and(|s| s >= 1),
                        "Retry-After: {retry_after:?}"
                    );
                    refused.insert(id);
                }
                other => panic!("publish {id}: {other} {body}"),
            }
        }
    }
    assert!(
        !refused.is_empty(),
        "150 publishes at once overflow a queue of 50"
    );
    assert!(accepted.len() >= 50, "{} accepted", accepted.len());

    // Nothing of a refused publish was stored.
    let stored = stored_event_ids(&server).await;
    assert_eq!(
        stored.intersection(&refused).count(),
        0,
        "refused ids stored"
    );
    assert!(accepted.is_subset(&stored));

    // The same requests succeed once the queue has room.
    let mut waiting = refused.clone();
    for _ in 0..60 {
        if waiting.is_empty() {
            break;
        }
        let mut pause = 1;
        for id in waiting.clone() {
            let (status, retry_after, body) = publish(&server, "a", KEY_A, &id).await;
            match status {
                202 => {
                    assert_eq!(body["deliveries"], 1, "{body}");
                    waiting.remove(&id);
                }
                503 => pause = retry_after.expect("Retry-After"),
                other => panic!("publish {id} again: {other} {body}"),
            }
        }
        tokio::time::sleep(Duration::from_secs(pause)).await;
    }
    assert!(waiting.is_empty(), "still refused: {waiting:?}");

    // Every event arrives, exactly once.
    receiver.wait_for(EVENTS, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut arrivals: BTreeMap<String, usize> = BTreeMap::new();
    for request in receiver.requests() {
        *arrivals.entry(event_id(&request)).or_default() += 1;
    }
    assert_eq!(arrivals.len(), EVENTS);
    assert!(arrivals.values().all(|n| *n == 1), "{arrivals:?}");
}

/// Org `a` has a backlog to a slow endpoint; org `b` publishes to a fast one after it.
/// Served in turns, all of `b`'s events arrive while most of `a`'s backlog still waits (a
/// single first-in, first-out queue would deliver them after it). The cap is set above
/// the worker's slots, so the turns alone do this.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backlog_of_one_org_does_not_hold_up_another() {
    const BACKLOG: usize = 300;
    const B_EVENTS: usize = 10;
    let ca = TestCa::new();
    let (_dir, ca_path) = trusted(&ca);
    let slow =
        HttpsReceiver::start_with_ca(&ca, Reply::ok().delay(Duration::from_millis(500))).await;
    let fast = HttpsReceiver::start_with_ca(&ca, Reply::ok()).await;
    let server = Arc::new(start(
        &ca_path,
        Server::builder().env("ENDPOINT_MAX_IN_FLIGHT", "1000"),
    ));
    endpoint(&server, "a", KEY_A, &slow.url("/a")).await;
    endpoint(&server, "b", KEY_B, &fast.url("/b")).await;

    let mut publishing = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let server = server.clone();
        publishing.spawn(async move {
            for n in (worker..BACKLOG).step_by(8) {
                let (status, _, body) = publish(&server, "a", KEY_A, &format!("a_{n}")).await;
                assert_eq!(status, 202, "{body}");
            }
        });
    }
    while let Some(done) = publishing.join_next().await {
        done.expect("publisher");
    }
    for n in 0..B_EVENTS {
        let (status, _, body) = publish(&server, "b", KEY_B, &format!("b_{n}")).await;
        assert_eq!(status, 202, "{body}");
    }
    let b = fast.wait_for(B_EVENTS, Duration::from_secs(60)).await;
    let last_b = b.iter().map(|r| r.received_at).max().expect("b arrived");
    let a_before = slow
        .requests()
        .iter()
        .filter(|r| r.received_at <= last_b)
        .count();
    assert!(
        a_before < BACKLOG / 2,
        "{a_before} of a's {BACKLOG} arrived before b's last event"
    );
}

/// A slow endpoint never has more than `ENDPOINT_MAX_IN_FLIGHT` requests under way, though
/// the worker has slots for more.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_endpoint_gets_at_most_its_cap_at_once() {
    const SLOW: Duration = Duration::from_millis(300);
    const EVENTS: usize = 30;
    let ca = TestCa::new();
    let (_dir, ca_path) = trusted(&ca);
    let receiver = HttpsReceiver::start_with_ca(&ca, Reply::ok().delay(SLOW)).await;
    let server = start(
        &ca_path,
        Server::builder().env("ENDPOINT_MAX_IN_FLIGHT", "3"),
    );
    endpoint(&server, "a", KEY_A, &receiver.url("/hook")).await;
    for n in 0..EVENTS {
        let (status, _, body) = publish(&server, "a", KEY_A, &format!("evt_{n}")).await;
        assert_eq!(status, 202, "{body}");
    }
    let got = receiver.wait_for(EVENTS, Duration::from_secs(60)).await;
    let peak = testkit::peak_concurrency(&got, SLOW);
    assert!((2..=3).contains(&peak), "{peak} requests at once (cap 3)");
}

#[test]
fn a_malformed_queue_setting_stops_start_up_naming_it() {
    for (name, value) in [
        ("LOCAL_QUEUE_LIMIT", "0"),
        ("ENDPOINT_MAX_IN_FLIGHT", "many"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_webhooks-local"))
            .args(["--listen", "127.0.0.1:0"])
            .env(name, value)
            .env("XDG_CACHE_HOME", support::cache_dir())
            .output()
            .expect("run");
        assert!(!out.status.success(), "{name}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(name), "{stderr}");
    }
}
