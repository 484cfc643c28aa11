//! A capacity meter: an HTTP proxy in front of the moto server that prices every DynamoDB
//! and SQS request the AWS SDK sends through it, by AWS's documented on-demand rules.
//!
//! [`CapacityMeter::start`] listens on `127.0.0.1:0` and forwards everything to the moto
//! URL it is given; point the SDK clients under test at [`CapacityMeter::endpoint_url`].
//! For each request it records the operation, the table or queue, and what AWS would
//! bill for it:
//!
//! - DynamoDB (AWS JSON 1.0, `X-Amz-Target: DynamoDB_20120810.<Op>`): write request units
//!   (`PutItem`, `UpdateItem`, `DeleteItem`, `BatchWriteItem`, `TransactWriteItems`) and
//!   read request units (`GetItem`, `BatchGetItem`, `TransactGetItems`, `Query`, `Scan`),
//!   global and local secondary indexes included; the rules, with the AWS documentation
//!   they come from, are in [`rules`] and [`size`]. To price a write the proxy needs the
//!   item before and after it: it reads each item the request touches from moto
//!   (`GetItem`, consistent) before and after forwarding the request, holding a lock so
//!   that no other write through the meter interleaves. The table's key and indexes come
//!   from `DescribeTable`, asked once per table. A `Query` or `Scan` with a filter or a
//!   projection is run again without them to size what it read. None of these helper
//!   requests is counted. Control-plane requests (`CreateTable`, `DescribeTable`, ...)
//!   are counted as calls that cost no capacity.
//! - SQS (the SDK here speaks AWS JSON 1.0, `X-Amz-Target: AmazonSQS.<Op>`; the older
//!   query protocol, `Action=<Op>` in a form body, is recognised too): requests by
//!   operation, each 64 KB chunk of a request's message payload counting as one request
//!   (the SQS pricing page: "Each 64 KB chunk of a payload is billed as 1 request"; a
//!   batch of up to 10 messages is one request). An empty `ReceiveMessage` is recorded
//!   as operation `ReceiveMessage(empty)`, so callers can tell polling from work.
//!
//! Apart from the pricing, the meter keeps what IAM would see of each request ([`Access`]:
//! the sending function, by the SDK's app name, the items and their condition-key facts),
//! which [`CapacityMeter::take_accesses`] hands over; the IAM test checks it against each
//! function's role.
//!
//! [`CapacityMeter::snapshot`] returns the totals, per-operation figures and a log of
//! every request (operation, table or queue, units and why); [`CapacityMeter::reset`]
//! starts again from zero; [`CapacityMeter::take`] does both at once.
//!
//! ```no_run
//! # async fn demo() {
//! let meter = testkit::capacity::CapacityMeter::start("http://127.0.0.1:5000").await;
//! // aws_sdk_dynamodb::config::Builder::from(&sdk).endpoint_url(meter.endpoint_url())...
//! // ... run the code under test ...
//! let usage = meter.snapshot();
//! println!("{} WRU, {} RRU, {} SQS requests", usage.wru, usage.rru, usage.sqs_requests);
//! for charge in &usage.log {
//!     println!("{} {} {}: {}", charge.operation, charge.resource, charge.wru, charge.why);
//! }
//! # }
//! ```
//!
//! The same proxy injects faults: [`CapacityMeter::with_faults`] fails a seeded share of
//! the DynamoDB and SQS requests before or after forwarding them ([`faults`]), with or
//! without pricing them.
//!
//! Limits: the meter prices what the rules say, not what AWS's servers measure, so it is
//! as good as those rules (a number's size is "approximately" documented, for one; a
//! refused `UpdateItem` is priced by the existing item, not by what it would have made;
//! `BatchWriteItem`'s unprocessed items, which moto never returns, are priced as written).
//! It serialises writes, so concurrent writers are slower through it than without it.

mod access;
mod dynamo;
pub mod faults;
pub mod rules;
pub mod size;
mod sqs;

pub use access::{Access, ItemAccess};
pub use faults::{Fault, FaultPlan, Injected, Tally};

use crate::local_server::{AcceptLoop, serve_http1};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use rules::TableSchema;
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Which service a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    DynamoDb,
    Sqs,
    /// Anything else moto was asked (forwarded, not priced).
    Other,
}

impl Service {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::DynamoDb => "DynamoDB",
            Self::Sqs => "SQS",
            Self::Other => "Other",
        }
    }
}

/// One request as the meter priced it.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    pub service: Service,
    /// `PutItem`, `SendMessageBatch`, `ReceiveMessage(empty)`, ...
    pub operation: String,
    /// The table or queue name (several, comma-separated, for multi-table requests).
    pub resource: String,
    /// What the request did, in a form that groups alike requests: the operation, the
    /// constant parts of the keys it addressed (`ORG#/EP#`: the text up to the first `#`
    /// of each key value) and the attributes an update sets, e.g.
    /// `UpdateItem ORG#/EP# [ADD delivery_seq]`.
    pub shape: String,
    pub wru: f64,
    pub rru: f64,
    /// Billable SQS requests (64 KB chunks).
    pub sqs_requests: u64,
    /// How the figures were worked out.
    pub why: String,
}

/// Calls and capacity of one operation (`DynamoDB.PutItem`, `SQS.SendMessageBatch`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpUsage {
    pub calls: u64,
    pub wru: f64,
    pub rru: f64,
    pub sqs_requests: u64,
}

/// What the meter saw since it started or was last reset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// Write request units, every table and index.
    pub wru: f64,
    /// Read request units.
    pub rru: f64,
    /// Billable SQS requests.
    pub sqs_requests: u64,
    /// Per operation, keyed `DynamoDB.<Op>` / `SQS.<Op>` / `Other.<Op>`.
    pub operations: BTreeMap<String, OpUsage>,
    /// Every request, in the order they finished.
    pub log: Vec<Charge>,
}

impl Usage {
    /// Calls of one operation, named as in [`Usage::operations`] (`DynamoDB.GetItem`).
    pub fn calls(&self, operation: &str) -> u64 {
        self.operations.get(operation).map_or(0, |o| o.calls)
    }

    /// Adds `other`'s requests to these (its log after this one's).
    pub fn extend(&mut self, other: Usage) {
        for charge in other.log {
            self.add(charge);
        }
    }

    fn add(&mut self, charge: Charge) {
        self.wru += charge.wru;
        self.rru += charge.rru;
        self.sqs_requests += charge.sqs_requests;
        let key = format!("{}.{}", charge.service.prefix(), charge.operation);
        let op = self.operations.entry(key).or_default();
        op.calls += 1;
        op.wru += charge.wru;
        op.rru += charge.rru;
        op.sqs_requests += charge.sqs_requests;
        self.log.push(charge);
    }
}

/// A request as the SDK sent it.
struct Forward {
    method: Method,
    path_and_query: String,
    headers: HeaderMap,
    body: Bytes,
}

/// Moto's answer.
struct Upstream {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Upstream {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The error type of a JSON-protocol error answer (`ConditionalCheckFailedException`).
    fn error_type(&self) -> Option<String> {
        if self.status.is_success() {
            return None;
        }
        let body = self.json();
        let kind = body.get("__type").and_then(|t| t.as_str()).unwrap_or("");
        Some(kind.rsplit('#').next().unwrap_or(kind).to_owned())
    }
}

struct Shared {
    moto: String,
    http: reqwest::Client,
    usage: Mutex<Usage>,
    accesses: Mutex<Vec<Access>>,
    /// Held from the "before" read to the "after" read of every write.
    writes: tokio::sync::Mutex<()>,
    schemas: Mutex<HashMap<String, Arc<TableSchema>>>,
    /// Off: every request is only forwarded (no pricing, no access log, no locking).
    pricing: bool,
    faults: Option<faults::Faults>,
}

impl Shared {
    fn usage(&self) -> MutexGuard<'_, Usage> {
        self.usage.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn schemas(&self) -> MutexGuard<'_, HashMap<String, Arc<TableSchema>>> {
        self.schemas.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, charge: Charge) {
        self.usage().add(charge);
    }

    fn record_access(&self, access: Access) {
        self.accesses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(access);
    }

    async fn forward(&self, request: &Forward) -> Result<Upstream, String> {
        let url = format!("{}{}", self.moto, request.path_and_query);
        let mut builder = self.http.request(request.method.clone(), url);
        for (name, value) in &request.headers {
            if !is_hop_by_hop(name) {
                builder = builder.header(name, value);
            }
        }
        let response = builder
            .body(request.body.clone())
            .send()
            .await
            .map_err(|e| format!("forwarding to moto: {e}"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("reading moto's answer: {e}"))?;
        Ok(Upstream {
            status,
            headers,
            body,
        })
    }

    /// A request of the meter's own to moto (not counted), with the caller's credentials
    /// (moto takes the region from them).
    async fn call(
        &self,
        like: &Forward,
        target: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Upstream, String> {
        let mut headers = HeaderMap::new();
        for name in ["authorization", "x-amz-date", "x-amz-security-token"] {
            if let Some(v) = like.headers.get(name) {
                headers.insert(HeaderName::from_static(name), v.clone());
            }
        }
        headers.insert(
            HeaderName::from_static("x-amz-target"),
            HeaderValue::from_str(target).map_err(|e| e.to_string())?,
        );
        headers.insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).map_err(|e| e.to_string())?,
        );
        self.forward(&Forward {
            method: Method::POST,
            path_and_query: "/".to_owned(),
            headers,
            body: Bytes::from(body),
        })
        .await
    }
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host"
            | "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "accept-encoding"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "upgrade"
    )
}

/// The proxy. Stops when dropped.
pub struct CapacityMeter {
    accept_loop: AcceptLoop,
    shared: Arc<Shared>,
}

impl CapacityMeter {
    /// Starts a meter forwarding to `moto_url` (e.g. `AWS_ENDPOINT_URL`). Panics (it is a
    /// test helper) if it cannot bind `127.0.0.1:0`.
    pub async fn start(moto_url: &str) -> Self {
        Self::start_with(moto_url, true, None).await
    }

    /// A proxy that fails requests as `plan` says (see [`faults`]), pricing them too if
    /// `pricing`; without it every request is only forwarded, so concurrent writers are
    /// not serialised and [`Self::snapshot`] stays empty.
    pub async fn with_faults(moto_url: &str, plan: FaultPlan, pricing: bool) -> Self {
        Self::start_with(moto_url, pricing, Some(faults::Faults::new(plan))).await
    }

    async fn start_with(moto_url: &str, pricing: bool, faults: Option<faults::Faults>) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("capacity meter: HTTP client");
        let shared = Arc::new(Shared {
            moto: moto_url.trim_end_matches('/').to_owned(),
            http,
            usage: Mutex::new(Usage::default()),
            accesses: Mutex::new(Vec::new()),
            writes: tokio::sync::Mutex::new(()),
            schemas: Mutex::new(HashMap::new()),
            pricing,
            faults,
        });
        let serving = shared.clone();
        let accept_loop = AcceptLoop::start("capacity meter", move |tcp| {
            let shared = serving.clone();
            serve_http1(tcp, move |request| handle(shared.clone(), request))
        })
        .await;
        Self {
            accept_loop,
            shared,
        }
    }

    /// `http://127.0.0.1:PORT`: the endpoint URL to give the SDK clients.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.accept_loop.addr())
    }

    /// Everything recorded since the start or the last reset.
    pub fn snapshot(&self) -> Usage {
        self.shared.usage().clone()
    }

    /// Forgets everything recorded so far (the table schemas stay cached).
    pub fn reset(&self) {
        *self.shared.usage() = Usage::default();
    }

    /// [`Self::snapshot`] and [`Self::reset`] in one step, so no request falls between.
    pub fn take(&self) -> Usage {
        std::mem::take(&mut *self.shared.usage())
    }

    /// Turns fault injection off (`false`: every request is forwarded as is, e.g. for
    /// setup and for the checks at the end) or on again. No effect without a plan.
    pub fn set_faults_active(&self, active: bool) {
        if let Some(faults) = &self.shared.faults {
            faults.set_active(active);
        }
    }

    /// Every fault injected so far (none without a plan).
    pub fn injected(&self) -> Injected {
        self.shared
            .faults
            .as_ref()
            .map(faults::Faults::injected)
            .unwrap_or_default()
    }

    /// Every DynamoDB and SQS request since the start or the last call, as IAM sees it
    /// (neither [`Self::reset`] nor [`Self::take`] clears these).
    pub fn take_accesses(&self) -> Vec<Access> {
        std::mem::take(
            &mut *self
                .shared
                .accesses
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }
}

impl std::fmt::Debug for CapacityMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CapacityMeter")
            .field("addr", &self.accept_loop.addr())
            .field("moto", &self.shared.moto)
            .finish_non_exhaustive()
    }
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let request = Forward {
        method: parts.method,
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned()),
        headers: parts.headers,
        body,
    };
    let target = request
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let (service, op) = if let Some(op) = target.strip_prefix("DynamoDB_20120810.") {
        (Service::DynamoDb, op)
    } else if let Some(op) = target.strip_prefix("AmazonSQS.") {
        (Service::Sqs, op)
    } else {
        (Service::Other, "")
    };
    let fault = shared.faults.as_ref().and_then(|f| {
        f.decide(
            &access::caller(&request.headers),
            service,
            op,
            &request.headers,
        )
    });
    if fault == Some(Fault::Before) {
        return Ok(fault_answer(service));
    }
    let result = if shared.pricing {
        price(&shared, service, op, &request).await
    } else {
        shared.forward(&request).await
    };
    if fault == Some(Fault::After) {
        return Ok(fault_answer(service));
    }
    Ok(match result {
        Ok(upstream) => {
            let mut response = Response::new(Full::new(upstream.body));
            *response.status_mut() = upstream.status;
            for (name, value) in &upstream.headers {
                if !is_hop_by_hop(name) {
                    response.headers_mut().append(name, value.clone());
                }
            }
            response
        }
        Err(err) => {
            let mut response = Response::new(Full::new(Bytes::from(err)));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            response
        }
    })
}

/// Forwards `request` and prices it.
async fn price(
    shared: &Shared,
    service: Service,
    op: &str,
    request: &Forward,
) -> Result<Upstream, String> {
    match service {
        Service::DynamoDb => dynamo::handle(shared, op, request).await,
        Service::Sqs => sqs::handle_json(shared, op, request).await,
        Service::Other => match sqs::query_action(request) {
            Some(op) => sqs::handle_query(shared, &op, request).await,
            None => {
                let upstream = shared.forward(request).await;
                if upstream.is_ok() {
                    let op = format!("{} {}", request.method, request.path_and_query);
                    shared.record(Charge {
                        service: Service::Other,
                        shape: op.clone(),
                        operation: op,
                        resource: String::new(),
                        wru: 0.0,
                        rru: 0.0,
                        sqs_requests: 0,
                        why: "not DynamoDB or SQS: forwarded, not priced".to_owned(),
                    });
                }
                upstream
            }
        },
    }
}

/// An injected fault's answer.
fn fault_answer(service: Service) -> Response<Full<Bytes>> {
    let (status, content_type, body) = faults::answer(service);
    let mut response = Response::new(Full::new(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    response
}

/// The constant part of a key value: up to and including its first `#` (`EP#...` →
/// `EP#`), the whole value if it is an upper-case word (`ORG`), `*` otherwise.
fn key_shape(value: &serde_json::Value) -> String {
    let text = value
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(|v| v.as_str());
    match text {
        Some(s) if s.contains('#') => s[..=s.find('#').unwrap_or(0)].to_owned(),
        Some(s) if !s.is_empty() && s.chars().all(|c| c.is_ascii_uppercase() || c == '_') => {
            s.to_owned()
        }
        _ => "*".to_owned(),
    }
}
