//! Metrics as CloudWatch Embedded Metric Format (EMF) lines: JSON written to the
//! function's log, which CloudWatch turns into metrics with no agent and no API call.
//!
//! Dimensions are few and bounded, because each distinct combination is a custom metric
//! billed by the month: route family × status class for the API, error kind and pause
//! reason for the sender. No endpoint or organisation dimension: there can be thousands
//! of each, so per-endpoint figures come from the per-attempt log lines (Logs Insights)
//! and the console's statistics instead.

use crate::domain::AttemptErrorKind;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Metric units, as EMF names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One EMF line: a dimension set and the metrics recorded under it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricLine {
    pub dimensions: Vec<(&'static str, String)>,
    /// Name, unit, values (several values are a distribution: EMF takes up to 100).
    pub metrics: Vec<(&'static str, Unit, Vec<f64>)>,
}

/// EMF takes at most this many values per metric and line.
const MAX_VALUES: usize = 100;

impl MetricLine {
    /// The line as EMF JSON, stamped `timestamp_ms` (Unix milliseconds).
    pub fn to_emf(&self, namespace: &str, timestamp_ms: i64) -> String {
        let mut root = Map::new();
        let names: Vec<&str> = self.dimensions.iter().map(|(name, _)| *name).collect();
        let definitions: Vec<Value> = self
            .metrics
            .iter()
            .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": [names],
                    "Metrics": definitions,
                }],
            }),
        );
        for (name, value) in &self.dimensions {
            root.insert((*name).into(), Value::from(value.as_str()));
        }
        for (name, _, values) in &self.metrics {
            let value = match values.as_slice() {
                [one] => json!(one),
                many => json!(&many[..many.len().min(MAX_VALUES)]),
            };
            root.insert((*name).into(), value);
        }
        Value::Object(root).to_string()
    }
}

/// Where metric lines go.
pub trait MetricsSink: Send + Sync {
    fn emit(&self, lines: &[MetricLine]);
}

/// Metrics off: the local server and tests that do not look at them.
pub struct NoMetrics;

impl MetricsSink for NoMetrics {
    fn emit(&self, _: &[MetricLine]) {}
}

/// EMF on stdout, which Lambda sends to the function's log group.
pub struct EmfStdout {
    pub namespace: String,
}

impl MetricsSink for EmfStdout {
    fn emit(&self, lines: &[MetricLine]) {
        use std::io::Write;
        let now = chrono::Utc::now().timestamp_millis();
        let mut out = std::io::stdout().lock();
        for line in lines {
            // A lost metric line must never fail a delivery or a request.
            let _ = writeln!(out, "{}", line.to_emf(&self.namespace, now));
        }
    }
}

/// Why an endpoint was paused by the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PauseReason {
    /// The circuit breaker: consecutive failures reached the threshold.
    Breaker,
    /// The receiver answered 410 Gone.
    Gone,
}

impl PauseReason {
    fn as_str(self) -> &'static str {
        match self {
            PauseReason::Breaker => "breaker",
            PauseReason::Gone => "gone",
        }
    }
}

/// What a batch of the sender did, gathered as its jobs run, emitted once at its end.
#[derive(Default)]
pub struct SenderTally {
    inner: Mutex<Tally>,
}

#[derive(Default)]
struct Tally {
    succeeded: u32,
    failed: BTreeMap<&'static str, u32>,
    durations_ms: Vec<f64>,
    exhausted: u32,
    paused: BTreeMap<PauseReason, u32>,
}

impl SenderTally {
    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An attempt was recorded: its error kind if it failed, its duration, and whether
    /// it left its delivery `failed` (retries exhausted or not retryable).
    pub fn attempt(&self, error: Option<AttemptErrorKind>, duration_ms: u64, exhausted: bool) {
        let mut t = self.tally();
        match error {
            None => t.succeeded += 1,
            Some(kind) => *t.failed.entry(kind.as_str()).or_default() += 1,
        }
        t.durations_ms.push(duration_ms as f64);
        t.exhausted += u32::from(exhausted);
    }

    pub fn paused(&self, reason: PauseReason) {
        *self.tally().paused.entry(reason).or_default() += 1;
    }

    /// The lines for the batch: totals (no dimension), failures by error kind, pauses
    /// by reason. Nothing when the batch made no attempt and paused nothing.
    pub fn lines(&self) -> Vec<MetricLine> {
        let t = self.tally();
        let failed: u32 = t.failed.values().sum();
        let attempts = t.succeeded + failed;
        let mut lines = Vec::new();
        if attempts > 0 {
            let count = |n: u32| vec![f64::from(n)];
            lines.push(MetricLine {
                dimensions: Vec::new(),
                metrics: vec![
                    ("Attempts", Unit::Count, count(attempts)),
                    ("AttemptsSucceeded", Unit::Count, count(t.succeeded)),
                    ("AttemptsFailed", Unit::Count, count(failed)),
                    ("DeliveriesExhausted", Unit::Count, count(t.exhausted)),
                    (
                        "AttemptDuration",
                        Unit::Milliseconds,
                        t.durations_ms.clone(),
                    ),
                ],
            });
        }
        for (kind, n) in &t.failed {
            lines.push(MetricLine {
                dimensions: vec![("ErrorKind", (*kind).to_owned())],
                metrics: vec![("AttemptsFailed", Unit::Count, vec![f64::from(*n)])],
            });
        }
        for (reason, n) in &t.paused {
            lines.push(MetricLine {
                dimensions: vec![("Reason", reason.as_str().to_owned())],
                metrics: vec![("EndpointsPaused", Unit::Count, vec![f64::from(*n)])],
            });
        }
        lines
    }
}

/// One API request: its route family and status class, and how long it took.
pub fn api_request(family: &str, status: u16, latency_ms: f64) -> MetricLine {
    MetricLine {
        dimensions: vec![
            ("RouteFamily", family.to_owned()),
            ("StatusClass", format!("{}xx", status / 100)),
        ],
        metrics: vec![
            ("Requests", Unit::Count, vec![1.0]),
            ("Latency", Unit::Milliseconds, vec![latency_ms]),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_apis() {
        use crate::domain::{DeliveryStatus, Trigger};
        for kind in [
            AttemptErrorKind::Timeout,
            AttemptErrorKind::Connect,
            AttemptErrorKind::Tls,
            AttemptErrorKind::Dns,
            AttemptErrorKind::BlockedAddress,
            AttemptErrorKind::Redirect,
            AttemptErrorKind::HttpStatus,
        ] {
            assert_eq!(
                serde_json::to_value(kind).expect("serialises"),
                kind.as_str()
            );
        }
        for status in [
            DeliveryStatus::Pending,
            DeliveryStatus::Retrying,
            DeliveryStatus::Succeeded,
            DeliveryStatus::Failed,
            DeliveryStatus::Paused,
        ] {
            assert_eq!(
                serde_json::to_value(status).expect("serialises"),
                status.as_str()
            );
        }
        for trigger in [Trigger::Automatic, Trigger::Manual] {
            assert_eq!(
                serde_json::to_value(trigger).expect("serialises"),
                trigger.as_str()
            );
        }
    }

    #[test]
    fn a_line_is_emf() {
        let line = api_request("publish", 202, 12.5).to_emf("Ns", 1_700_000_000_000);
        let v: Value = serde_json::from_str(&line).expect("JSON");
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!(directive["Namespace"], "Ns");
        assert_eq!(
            directive["Dimensions"],
            json!([["RouteFamily", "StatusClass"]])
        );
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "Requests", "Unit": "Count"}, {"Name": "Latency", "Unit": "Milliseconds"}])
        );
        assert_eq!(
            (
                &v["RouteFamily"],
                &v["StatusClass"],
                &v["Requests"],
                &v["Latency"]
            ),
            (&json!("publish"), &json!("2xx"), &json!(1.0), &json!(12.5))
        );
    }

    #[test]
    fn a_tally_comes_to_totals_kinds_and_reasons() {
        let tally = SenderTally::default();
        assert!(tally.lines().is_empty(), "nothing done, nothing emitted");
        tally.attempt(None, 20, false);
        tally.attempt(Some(AttemptErrorKind::HttpStatus), 30, false);
        tally.attempt(Some(AttemptErrorKind::Timeout), 15_000, true);
        tally.paused(PauseReason::Breaker);
        let lines = tally.lines();
        assert_eq!(lines.len(), 4, "{lines:?}");
        let totals: Value = serde_json::from_str(&lines[0].to_emf("Ns", 0)).expect("JSON");
        assert_eq!(
            totals["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
        assert_eq!(
            (
                &totals["Attempts"],
                &totals["AttemptsSucceeded"],
                &totals["AttemptsFailed"],
                &totals["DeliveriesExhausted"]
            ),
            (&json!(3.0), &json!(1.0), &json!(2.0), &json!(1.0))
        );
        assert_eq!(totals["AttemptDuration"], json!([20.0, 30.0, 15000.0]));
        let kinds: Vec<Value> = lines[1..3]
            .iter()
            .map(|l| {
                serde_json::from_str::<Value>(&l.to_emf("Ns", 0)).expect("JSON")["ErrorKind"]
                    .clone()
            })
            .collect();
        assert_eq!(kinds, [json!("http_status"), json!("timeout")]);
        let paused: Value = serde_json::from_str(&lines[3].to_emf("Ns", 0)).expect("JSON");
        assert_eq!(
            (&paused["Reason"], &paused["EndpointsPaused"]),
            (&json!("breaker"), &json!(1.0))
        );
    }
}
