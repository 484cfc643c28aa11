//! Fairness of the local server's queue, printed as figures (no assertions: these
//! machines are noisy). The real `webhooks-local` binary and two HTTPS receivers in this
//! process: org `a` publishes a backlog of 1,500 events to an endpoint that takes 200 ms a
//! request; while it drains, org `b` publishes 100 events, spread over the drain, to an
//! endpoint that answers at once. Prints `b`'s latency (arrival at its receiver minus the
//! moment its publish was sent: p50, p95, max) and `a`'s drain rate.
//!
//! `cargo bench -p webhooks-local --bench fairness`

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::Server;
use testkit::{HttpsReceiver, Reply, TempDir, TestCa};

const KEY_A: &str = "avk_bench_fairness_org_a";
const KEY_B: &str = "avk_bench_fairness_org_b";
const BACKLOG: usize = 1_500;
const SLOW: Duration = Duration::from_millis(200);
const B_EVENTS: usize = 100;
/// Between two of `b`'s publishes: 100 of them take about 20 s, inside `a`'s drain
/// (1,500 × 200 ms at 10 in flight: about 30 s).
const B_EVERY: Duration = Duration::from_millis(200);

async fn post(server: &Server, org: &str, key: &str, path: &str, body: serde_json::Value) -> u16 {
    let request = server
        .http()
        .post(server.url(&format!("/org/{org}/webhooks/{path}")))
        .bearer_auth(key)
        .json(&body);
    server.send(request).await.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

async fn run() {
    let ca = TestCa::new();
    let dir = TempDir::new("bench-fairness");
    let ca_path = ca.write_pem(dir.path());
    let slow = HttpsReceiver::start_with_ca(&ca, Reply::ok().delay(SLOW)).await;
    let fast = HttpsReceiver::start_with_ca(&ca, Reply::ok()).await;
    let server = Arc::new(
        Server::builder()
            .key("a", "admin", KEY_A)
            .key("b", "admin", KEY_B)
            .root_cert(&ca_path)
            .kill_after(Duration::from_secs(600))
            .start(),
    );
    for (org, key, url) in [("a", KEY_A, slow.url("/a")), ("b", KEY_B, fast.url("/b"))] {
        let body = json!({"url": url, "event_types": ["bench.event"]});
        assert_eq!(post(&server, org, key, "endpoints", body).await, 201);
    }

    let started = Instant::now();
    let mut publishing = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let server = server.clone();
        publishing.spawn(async move {
            for n in (worker..BACKLOG).step_by(8) {
                let body = json!({"id": format!("a_{n}"), "type": "bench.event", "data": {}});
                assert_eq!(post(&server, "a", KEY_A, "events", body).await, 202);
            }
        });
    }
    while let Some(done) = publishing.join_next().await {
        done.expect("publisher");
    }
    let backlog_published = started.elapsed();

    let mut sent = HashMap::new();
    for n in 0..B_EVENTS {
        let id = format!("b_{n}");
        sent.insert(id.clone(), Instant::now());
        let body = json!({"id": id, "type": "bench.event", "data": {}});
        assert_eq!(post(&server, "b", KEY_B, "events", body).await, 202);
        tokio::time::sleep(B_EVERY).await;
    }
    let b = fast.wait_for(B_EVENTS, Duration::from_secs(120)).await;
    let a_when_b_done = slow.requests().len();
    let a = slow.wait_for(BACKLOG, Duration::from_secs(600)).await;

    let mut latencies: Vec<Duration> = b
        .iter()
        .map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).expect("envelope");
            let id = body["id"].as_str().expect("id");
            r.received_at.duration_since(sent[id])
        })
        .collect();
    latencies.sort();
    let drained = a
        .iter()
        .map(|r| r.received_at)
        .max()
        .expect("a arrived")
        .duration_since(started);
    println!(
        "org a: {BACKLOG} events to an endpoint taking {SLOW:?} a request, published in {backlog_published:.1?}"
    );
    println!(
        "org a: drained in {drained:.1?}: {:.1} deliveries/s ({a_when_b_done} of {BACKLOG} arrived when b's last did)",
        BACKLOG as f64 / drained.as_secs_f64()
    );
    println!(
        "org b: {B_EVENTS} events, one every {B_EVERY:?}, to a fast endpoint: latency p50 {:.0?}, p95 {:.0?}, max {:.0?}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        latencies.last().copied().unwrap_or_default()
    );
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run());
}
