//! Fault injection: the proxy fails a chosen share of DynamoDB and SQS requests, each
//! either before forwarding it (moto never sees it) or after (moto applied it, the client
//! is told it failed: AWS's "the request may or may not have been processed").
//!
//! A fault is an HTTP 500 in the service's protocol (AWS JSON 1.0 for both, as the SDK
//! here speaks them): DynamoDB's `InternalServerError`, SQS's `InternalFailure`. The SDK
//! classifies a 500 as transient and retries it itself (standard mode: three attempts),
//! as it would on AWS; every attempt is a request of its own and may fail again.
//!
//! Whether a request fails is a pure function of the seed, the sending function (the SDK
//! app name), the operation, the operation's invocation number for that function (in the
//! order the proxy first sees each `amz-sdk-invocation-id`) and the attempt
//! (`amz-sdk-request: attempt=N`). So a seed replays the same faults for the same calls,
//! wherever the requests of other functions interleave; where one function makes calls
//! concurrently (a publish's per-endpoint writes, several publishers), which of them is
//! the n-th may vary from run to run. Requests of the older SQS query protocol and
//! anything that is neither DynamoDB nor SQS are never failed.

use super::Service;
use bytes::Bytes;
use hyper::header::HeaderMap;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Which requests fail, and how.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultPlan {
    /// Replays the same faults for the same calls.
    pub seed: u64,
    /// The share of DynamoDB and SQS requests that fail (0.0 to 1.0).
    pub share: f64,
    /// Of those, the share that fails after moto applied the request.
    pub after_share: f64,
}

impl FaultPlan {
    /// Whether attempt `attempt` (from 1) of the `invocation`-th call (from 0) that
    /// function `caller` made of `operation` (`DynamoDB.PutItem`) fails, and when: what
    /// the proxy decides, as a pure function (to find the seeds that fail a given call).
    pub fn fault_of(
        &self,
        caller: &str,
        operation: &str,
        invocation: u64,
        attempt: u64,
    ) -> Option<Fault> {
        let roll = |salt: u64| {
            let mut h = splitmix(self.seed ^ salt);
            for part in [caller.as_bytes(), b"/", operation.as_bytes()] {
                for &b in part {
                    h = splitmix(h ^ u64::from(b));
                }
            }
            h = splitmix(h ^ invocation);
            unit(splitmix(h ^ attempt))
        };
        if roll(0) >= self.share {
            None
        } else if roll(1) < self.after_share {
            Some(Fault::After)
        } else {
            Some(Fault::Before)
        }
    }
}

/// When a request fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Not forwarded: nothing was applied.
    Before,
    /// Forwarded and applied; the client still gets the error.
    After,
}

/// Faults injected into one operation (or a service, or all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub before: u64,
    pub after: u64,
}

impl Tally {
    pub fn total(self) -> u64 {
        self.before + self.after
    }

    fn add(&mut self, other: Tally) {
        self.before += other.before;
        self.after += other.after;
    }
}

/// Every fault injected, per operation (`DynamoDB.PutItem`, `SQS.SendMessageBatch`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Injected {
    pub operations: BTreeMap<String, Tally>,
    /// The calls whose every attempt failed, so the SDK gave up and the caller got the
    /// error, per `function operation` (`publish-api SQS.SendMessageBatch`): `after` if
    /// at least one attempt was applied, `before` if none was.
    pub exhausted: BTreeMap<String, Tally>,
}

impl Injected {
    /// All of one service's operations together.
    pub fn service(&self, service: Service) -> Tally {
        let prefix = format!("{}.", service.prefix());
        let mut tally = Tally::default();
        for (_, t) in self
            .operations
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
        {
            tally.add(*t);
        }
        tally
    }

    pub fn total(&self) -> Tally {
        let mut tally = Tally::default();
        for t in self.operations.values() {
            tally.add(*t);
        }
        tally
    }
}

/// One call as the proxy saw its attempts.
struct Call {
    /// In the order the proxy first saw the calls of its function and operation.
    number: u64,
    /// Every attempt so far failed.
    all_failed: bool,
    /// An attempt was applied and reported failed.
    applied: bool,
}

/// The proxy's fault state: the plan, whether it is on, the calls seen and the faults
/// injected.
pub(super) struct Faults {
    plan: FaultPlan,
    active: AtomicBool,
    /// Per (function, operation): invocation id → the call.
    calls: Mutex<HashMap<(String, String), HashMap<String, Call>>>,
    injected: Mutex<Injected>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Faults {
    pub(super) fn new(plan: FaultPlan) -> Self {
        Self {
            plan,
            active: AtomicBool::new(true),
            calls: Mutex::new(HashMap::new()),
            injected: Mutex::new(Injected::default()),
        }
    }

    pub(super) fn set_active(&self, active: bool) {
        self.active.store(active, Ordering::SeqCst);
    }

    pub(super) fn injected(&self) -> Injected {
        lock(&self.injected).clone()
    }

    /// Whether this request fails, and when; counted if it does.
    pub(super) fn decide(
        &self,
        caller: &str,
        service: Service,
        operation: &str,
        headers: &HeaderMap,
    ) -> Option<Fault> {
        if !self.active.load(Ordering::SeqCst) || service == Service::Other {
            return None;
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let key = format!("{}.{operation}", service.prefix());
        let (attempt, max) = header("amz-sdk-request").map_or((1, 1), attempt_of);
        let mut calls = lock(&self.calls);
        let seen = calls.entry((caller.to_owned(), key.clone())).or_default();
        let number = seen.len() as u64;
        // No invocation id: every request is a call of its own.
        let id =
            header("amz-sdk-invocation-id").map_or_else(|| format!("#{number}"), str::to_owned);
        let call = seen.entry(id).or_insert(Call {
            number,
            all_failed: true,
            applied: false,
        });
        let fault = self.plan.fault_of(caller, &key, call.number, attempt);
        call.all_failed &= fault.is_some();
        call.applied |= fault == Some(Fault::After);
        let fault = fault?;
        let mut injected = lock(&self.injected);
        count(injected.operations.entry(key.clone()).or_default(), fault);
        if call.all_failed && attempt >= max {
            let given_up = if call.applied {
                Fault::After
            } else {
                Fault::Before
            };
            count(
                injected
                    .exhausted
                    .entry(format!("{caller} {key}"))
                    .or_default(),
                given_up,
            );
        }
        Some(fault)
    }
}

fn count(tally: &mut Tally, fault: Fault) {
    match fault {
        Fault::Before => tally.before += 1,
        Fault::After => tally.after += 1,
    }
}

/// `attempt=2; max=3` → (2, 3); a missing part is 1.
fn attempt_of(value: &str) -> (u64, u64) {
    let part = |name: &str| {
        value
            .split(';')
            .filter_map(|pair| pair.trim().strip_prefix(name))
            .find_map(|n| n.parse().ok())
            .unwrap_or(1)
    };
    (part("attempt="), part("max="))
}

/// splitmix64's finaliser: every input bit moves every output bit.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The top 53 bits as a number in [0, 1).
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The error answer of a failed request: status, content type, body.
pub(super) fn answer(service: Service) -> (u16, &'static str, Bytes) {
    let (kind, message) = match service {
        Service::DynamoDb => (
            "com.amazonaws.dynamodb.v20120810#InternalServerError",
            "Internal server error (injected by the test proxy)",
        ),
        _ => (
            "com.amazon.coral.service#InternalFailure",
            "The request processing has failed because of an unknown error, exception or \
             failure (injected by the test proxy)",
        ),
    };
    let body = serde_json::json!({"__type": kind, "message": message}).to_string();
    (500, "application/x-amz-json-1.0", Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(invocation: &str, attempt: u32) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "amz-sdk-invocation-id",
            HeaderValue::from_str(invocation).expect("value"),
        );
        h.insert(
            "amz-sdk-request",
            HeaderValue::from_str(&format!("attempt={attempt}; max=3")).expect("value"),
        );
        h
    }

    fn decisions(seed: u64, calls: &[&str]) -> Vec<Option<Fault>> {
        let faults = Faults::new(FaultPlan {
            seed,
            share: 0.3,
            after_share: 0.5,
        });
        calls
            .iter()
            .flat_map(|id| {
                (1..=3).map(|attempt| {
                    faults.decide("sender", Service::Sqs, "SendMessage", &headers(id, attempt))
                })
            })
            .collect()
    }

    #[test]
    fn a_seed_replays_its_faults_and_another_seed_differs() {
        let calls: Vec<String> = (0..200).map(|i| format!("inv-{i}")).collect();
        let calls: Vec<&str> = calls.iter().map(String::as_str).collect();
        let first = decisions(7, &calls);
        assert_eq!(first, decisions(7, &calls));
        // Invocation ids differ between runs; their order is what counts.
        let renamed: Vec<String> = (0..200).map(|i| format!("other-{i}")).collect();
        let renamed: Vec<&str> = renamed.iter().map(String::as_str).collect();
        assert_eq!(first, decisions(7, &renamed));
        assert_ne!(first, decisions(8, &calls));
        let failed = first.iter().filter(|f| f.is_some()).count();
        assert!((120..=240).contains(&failed), "about 30 % of 600: {failed}");
        let after = first.iter().filter(|f| **f == Some(Fault::After)).count();
        assert!(
            after > 0 && after < failed,
            "both kinds: {after} of {failed}"
        );
    }

    #[test]
    fn inactive_or_other_services_never_fail_and_counts_are_kept() {
        let faults = Faults::new(FaultPlan {
            seed: 1,
            share: 1.0,
            after_share: 0.0,
        });
        let h = headers("a", 1);
        assert_eq!(faults.decide("x", Service::Other, "GET /", &h), None);
        faults.set_active(false);
        assert_eq!(faults.decide("x", Service::DynamoDb, "GetItem", &h), None);
        faults.set_active(true);
        assert_eq!(
            faults.decide("x", Service::DynamoDb, "GetItem", &h),
            Some(Fault::Before)
        );
        let injected = faults.injected();
        assert_eq!(injected.service(Service::DynamoDb).before, 1);
        assert_eq!(injected.service(Service::Sqs).total(), 0);
        assert_eq!(injected.total().total(), 1);
        assert!(injected.exhausted.is_empty(), "attempt 1 of 3");
        for attempt in 2..=3 {
            faults.decide("x", Service::DynamoDb, "GetItem", &headers("a", attempt));
        }
        assert_eq!(
            injected_exhausted(&faults, "x DynamoDB.GetItem"),
            Tally {
                before: 1,
                after: 0
            }
        );
    }

    fn injected_exhausted(faults: &Faults, call: &str) -> Tally {
        faults
            .injected()
            .exhausted
            .get(call)
            .copied()
            .unwrap_or_default()
    }

    #[test]
    fn the_attempt_is_read_from_the_sdk_header() {
        assert_eq!(attempt_of("attempt=2; max=3"), (2, 3));
        assert_eq!(attempt_of("ttl=20250101T000000Z; attempt=3; max=3"), (3, 3));
        assert_eq!(attempt_of("nonsense"), (1, 1));
    }
}
