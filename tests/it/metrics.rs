//! The sender's metrics (CloudWatch Embedded Metric Format): a batch of real attempts
//! through `handle_sqs_batch`, its lines parsed and checked for names, units and
//! dimensions, and their figures against what the store recorded.

use crate::common::*;
use crate::pipeline::{Harness, Options};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use axum::body::Body;
use serde_json::{Value, json};
use shared::adapters::memory::MemoryStore;
use shared::adapters::memory::queue::MemoryQueue;
use shared::api::request_metrics;
use shared::metrics::{MetricLine, MetricsSink, Unit};
use shared::wiring::Services;
use shared::wiring::sqs_batch::handle_sqs_batch;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::Reply;
use tower::ServiceExt;

#[derive(Default)]
struct Captured(Mutex<Vec<String>>);

impl MetricsSink for Captured {
    fn emit(&self, lines: &[MetricLine]) {
        let mut kept = self.0.lock().expect("lock");
        kept.extend(lines.iter().map(|l| l.to_emf("AgentVistaWebhooks/test", 1)));
    }
}

/// Each line's one directive: (dimension names, [(metric, unit)]), and the line.
fn directive(line: &str) -> (Vec<String>, Vec<(String, String)>, Value) {
    let v: Value = serde_json::from_str(line).expect("an EMF line is JSON");
    let d = &v["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(d["Namespace"], "AgentVistaWebhooks/test");
    let dims: Vec<String> = d["Dimensions"][0]
        .as_array()
        .expect("one dimension set")
        .iter()
        .map(|n| n.as_str().expect("name").to_owned())
        .collect();
    let metrics = d["Metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|m| {
            (
                m["Name"].as_str().expect("name").to_owned(),
                m["Unit"].as_str().expect("unit").to_owned(),
            )
        })
        .collect();
    (dims, metrics, v)
}

#[tokio::test]
async fn a_batch_emits_totals_failures_by_kind_and_breaker_pauses() {
    // Every answer a 500, no retries, a breaker that trips at 2.
    let mut h = Harness::start(
        memory().await,
        Reply::status(500).into(),
        Options {
            retry: Vec::new(),
            threshold: 2,
            ..Options::default()
        },
    )
    .await;
    let captured = Arc::new(Captured::default());
    h.sender.metrics = captured.clone();
    let (endpoint, _) = h.endpoint(&["alert.fired"]).await;
    let mut event = SqsEvent::default();
    for n in 0..3 {
        h.publish(&format!("evt_metrics_{n}")).await;
        let job = h.next_job(Duration::from_secs(5)).await.expect("a job");
        let mut record = SqsMessage::default();
        record.message_id = Some(format!("m{n}"));
        record.body = Some(job.to_json());
        event.records.push(record);
    }
    let response = handle_sqs_batch(&h.sender, event).await;
    assert!(response.batch_item_failures.is_empty());

    let lines = captured.0.lock().expect("lock").clone();
    let made = h.receiver.requests().len();
    assert!(made >= 2, "at least the attempts that tripped the breaker");
    let (dims, metrics, totals) = directive(&lines[0]);
    assert!(dims.is_empty(), "totals carry no dimension");
    assert_eq!(
        metrics,
        [
            ("Attempts", "Count"),
            ("AttemptsSucceeded", "Count"),
            ("AttemptsFailed", "Count"),
            ("DeliveriesExhausted", "Count"),
            ("AttemptDuration", "Milliseconds"),
        ]
        .map(|(n, u)| (n.to_owned(), u.to_owned()))
    );
    let made = made as f64;
    assert_eq!(
        (
            &totals["Attempts"],
            &totals["AttemptsSucceeded"],
            &totals["AttemptsFailed"],
            &totals["DeliveriesExhausted"]
        ),
        (&json!(made), &json!(0.0), &json!(made), &json!(made)),
        "every attempt failed and, with no retries, exhausted its delivery"
    );
    assert_eq!(
        totals["AttemptDuration"].as_array().map(Vec::len),
        Some(made as usize),
        "one duration per attempt"
    );

    let (dims, metrics, by_kind) = directive(&lines[1]);
    assert_eq!(dims, ["ErrorKind"]);
    assert_eq!(metrics, [("AttemptsFailed".to_owned(), "Count".to_owned())]);
    assert_eq!(
        (&by_kind["ErrorKind"], &by_kind["AttemptsFailed"]),
        (&json!("http_status"), &json!(made))
    );

    let (dims, metrics, paused) = directive(&lines[2]);
    assert_eq!(dims, ["Reason"]);
    assert_eq!(
        metrics,
        [("EndpointsPaused".to_owned(), "Count".to_owned())]
    );
    assert_eq!(
        (&paused["Reason"], &paused["EndpointsPaused"]),
        (&json!("breaker"), &json!(1.0))
    );
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        !h.stored_endpoint(&endpoint).await.is_active,
        "it was paused"
    );
    assert!(
        lines.iter().all(|l| !l.contains(&endpoint)),
        "no endpoint id in any metric"
    );
}

/// Writes a subscriber's output to a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The Lambdas' JSON subscriber as this thread's default (a current-thread test runtime
/// runs the sender on it), writing to a buffer, until dropped.
///
/// tracing-core (0.1.36) caches a callsite's interest once, when the first thread
/// reaches it, and while a single `Dispatch` is registered it asks only that thread's
/// default (tokio-rs/tracing#3611). Other tests in this binary run the sender on threads
/// with no subscriber: had one reached `attempt recorded` first, it would have cached
/// "never" for every thread and this thread's line would be lost. A second `Dispatch`
/// (one that logs nothing), registered before this subscriber's, makes tracing-core ask
/// every registered one, this subscriber included, whichever thread gets there first.
struct LambdaLogs {
    buffer: Buffer,
    _default: tracing::subscriber::DefaultGuard,
    _second: tracing::Dispatch,
}

impl LambdaLogs {
    fn capture() -> Self {
        let second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let default = tracing::subscriber::set_default(shared::telemetry::lambda_subscriber(
            move || writer.clone(),
            Some("info"),
        ));
        Self {
            buffer,
            _default: default,
            _second: second,
        }
    }

    /// What was written so far.
    fn text(&self) -> String {
        String::from_utf8(self.buffer.0.lock().expect("lock").clone()).expect("utf-8")
    }
}

/// The capture above sees a line whose callsite a thread with no subscriber reached
/// first, as a sibling test's sender may.
#[test]
fn captured_logs_keep_a_line_another_thread_reached_first() {
    fn reached_by_both() {
        tracing::info!(target: "shared::pipeline::sender", "reached by both");
    }
    let logs = LambdaLogs::capture();
    std::thread::spawn(reached_by_both)
        .join()
        .expect("the other thread");
    reached_by_both();
    let text = logs.text();
    assert_eq!(text.matches("reached by both").count(), 1, "{text}");
}

/// Each attempt is one JSON log line, as the Lambdas write it, with what an operator
/// searches by.
#[tokio::test]
async fn each_attempt_is_one_json_line_with_its_ids_status_kind_and_duration() {
    let mut h = Harness::start(
        memory().await,
        Reply::status(503).into(),
        Options::default(),
    )
    .await;
    let (endpoint, _) = h.endpoint(&["alert.fired"]).await;
    h.publish("evt_logged").await;
    let logs = LambdaLogs::capture();
    h.step(Duration::from_secs(5)).await;
    let text = logs.text();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|l: &Value| l["fields"]["message"] == "attempt recorded")
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    let fields = &lines[0]["fields"];
    assert_eq!(fields["org"], "acme");
    assert_eq!(fields["endpoint_id"], endpoint.as_str());
    assert!(
        fields["delivery_id"]
            .as_str()
            .is_some_and(|d| d.len() == 36)
    );
    assert_eq!(fields["attempt"], 1);
    assert_eq!(fields["trigger"], "automatic");
    assert_eq!(fields["status_code"], 503);
    assert_eq!(fields["error_kind"], "http_status");
    assert!(fields["duration_ms"].as_u64().is_some());
    assert_eq!(fields["outcome"], "retrying");
}

/// Lines as the API emits them.
#[derive(Default)]
struct CapturedLines(Mutex<Vec<MetricLine>>);

impl MetricsSink for CapturedLines {
    fn emit(&self, lines: &[MetricLine]) {
        self.0.lock().expect("lock").extend_from_slice(lines);
    }
}

/// Each API request is one line, labelled with the router that served it.
#[tokio::test]
async fn every_api_request_is_one_line_with_its_family_and_status_class() {
    let (queue, _jobs) = MemoryQueue::new();
    let services = Services::new(Arc::new(MemoryStore::new()), Arc::new(queue));
    let sink = Arc::new(CapturedLines::default());
    let router = request_metrics::measured(services.router(), sink.clone());
    for (uri, status) in [
        ("/openapi.json", 200),
        ("/key", 401),
        ("/org/acme/webhooks/endpoints", 401),
        ("/nowhere", 404),
        ("/org/acme/webhooks/endpoints/{id}/stats", 401),
        ("/org/acme/webhooks/recoveries/{id}", 401),
        ("/org/acme/webhooks/events", 405),
    ] {
        let uri = uri.replace("{id}", "0193a5c2-7d1e-7a00-8000-00000000e001");
        let method = if uri.ends_with("/events") {
            "PUT"
        } else {
            "GET"
        };
        let response = router
            .clone()
            .oneshot(
                axum::http::Request::builder()
                    .method(method)
                    .uri(&uri)
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
            // Served by the deliveries router (and Lambda), whatever the path says.
            ("deliveries".into(), "4xx".into()),
            ("deliveries".into(), "4xx".into()),
            // A route is a method and a path: PUT on the publish path matched none.
            ("unrouted".into(), "4xx".into()),
        ]
    );
    for line in &lines {
        assert_eq!(line.metrics[0], ("Requests", Unit::Count, vec![1.0]));
        let (name, unit, values) = &line.metrics[1];
        assert_eq!(
            (*name, *unit, values.len()),
            ("Latency", Unit::Milliseconds, 1)
        );
    }
}
