//! Test support: an HTTPS webhook receiver with a certificate made in the test.
//!
//! [`HttpsReceiver::start`] binds `127.0.0.1` on a free port, serves HTTP/1.1 over TLS with
//! a leaf certificate for `localhost`, `127.0.0.1` and `::1` issued by a throw-away CA made
//! with rcgen, and records every request it gets. Trust [`TlsServer::ca_pem`] (or the
//! file [`TlsServer::write_ca_pem`] writes) to talk to it.
//!
//! What it answers is programmable per request with a [`Behaviour`] of [`Reply`]s: status,
//! extra headers, body, a delay before answering, or an endless slow body.
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! use testkit::{Behaviour, HttpsReceiver, Reply};
//!
//! let receiver = HttpsReceiver::start(Behaviour::sequence(
//!     [Reply::status(503).header("Retry-After", "1")],
//!     Reply::ok(),
//! ))
//! .await;
//! let url = receiver.url("/hook"); // https://127.0.0.1:PORT/hook
//! let ca = receiver.ca_pem(); // trust this PEM in the client under test
//! // ... make the code under test post to `url` twice ...
//! let got = receiver.wait_for(2, Duration::from_secs(5)).await;
//! assert_eq!(got[0].header("content-type"), Some("application/json"));
//! # let _ = (url, ca);
//! # }
//! ```
//!
//! Dropping the receiver stops it and closes every open connection.
//!
//! Receivers started with one [`TestCa`] ([`HttpsReceiver::start_with_ca`]) share its
//! certificate, so trusting that CA once covers all of them; [`HttpsReceiver::start`]
//! makes a CA of its own. For receivers that misbehave below HTTP (never answering,
//! trickling their head, resetting the connection, sending a huge body as fast as the
//! socket takes it), [`raw::RawTlsReceiver`] runs a scripted behaviour per connection on
//! the TLS stream itself, without hyper.
//!
//! [`capacity::CapacityMeter`] is of another kind: a proxy in front of the moto emulator
//! that prices every DynamoDB and SQS request sent through it by AWS's on-demand rules
//! (write and read request units, SQS requests), for tests that hold the code to a budget;
//! it can also fail a seeded share of those requests, before or after moto applied them
//! ([`capacity::faults`]), for tests of what survives such faults.

mod behaviour;
pub mod capacity;
pub mod in_process;
mod local_server;
pub mod openapi;
pub mod raw;
mod temp_dir;
mod tls;
mod tls_server;

pub use behaviour::{Behaviour, Reply, ReplyBody};
pub use temp_dir::TempDir;
pub use tls::TestCa;
pub use tls_server::TlsServer;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use behaviour::ReplyStream;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `POST`, `GET`, ...
    pub method: String,
    /// The request target: path plus `?query` if any, e.g. `/hook?x=1`.
    pub path: String,
    /// Header names in lower case; repeated headers are joined with `", "`.
    pub headers: BTreeMap<String, String>,
    /// The exact body bytes.
    pub body: Bytes,
    /// When the whole request (body included) had arrived.
    pub received_at: Instant,
    /// The same moment on the wall clock.
    pub received_at_system: SystemTime,
}

impl RecordedRequest {
    /// A header's value; `name` is matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The body as UTF-8 text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The most requests that were being answered at once, for a receiver that answers each
/// `reply_delay` after it arrived: each is counted from its arrival until a little
/// before its answer. The sender had each of them in flight at least that long, so the
/// figure never exceeds the sender's concurrency to this receiver.
pub fn peak_concurrency(requests: &[RecordedRequest], reply_delay: Duration) -> usize {
    // Less than the delay, so requests that follow one another back to back never count
    // as overlapping.
    let answering = reply_delay.mul_f64(0.9);
    let mut edges: Vec<(Instant, i32)> = requests
        .iter()
        .flat_map(|r| [(r.received_at, 1), (r.received_at + answering, -1)])
        .collect();
    // At one instant, an end before a start.
    edges.sort();
    let (mut now, mut peak) = (0i32, 0i32);
    for (_, step) in edges {
        now += step;
        peak = peak.max(now);
    }
    usize::try_from(peak).unwrap_or(0)
}

struct State {
    requests: Mutex<Vec<RecordedRequest>>,
    count: watch::Sender<usize>,
    behaviour: Mutex<Behaviour>,
}

impl State {
    fn requests(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn behaviour(&self) -> MutexGuard<'_, Behaviour> {
        self.behaviour.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A count: the requests themselves may be large.
impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} request(s)", self.requests().len())
    }
}

/// An HTTPS server on `127.0.0.1:PORT` that records requests and answers as told. Its
/// address, URLs and CA are those of its [`TlsServer`].
///
/// Panics (it is a test helper) if the port cannot be bound or the certificate cannot be
/// made. Stops when dropped.
#[derive(Debug)]
pub struct HttpsReceiver {
    server: TlsServer,
    state: Arc<State>,
}

impl HttpsReceiver {
    /// Starts a receiver that answers as `behaviour` says (a bare [`Reply`] works too),
    /// with a certificate from a CA of its own.
    pub async fn start(behaviour: impl Into<Behaviour>) -> Self {
        Self::start_with_ca(&TestCa::new(), behaviour).await
    }

    /// Like [`Self::start`], with a certificate from `ca`: every receiver of one [`TestCa`]
    /// is trusted by trusting that CA once.
    pub async fn start_with_ca(ca: &TestCa, behaviour: impl Into<Behaviour>) -> Self {
        let state = Arc::new(State {
            requests: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
            behaviour: Mutex::new(behaviour.into()),
        });
        let serving = state.clone();
        let server = TlsServer::start(ca, move |tcp, acceptor| {
            serve_connection(tcp, acceptor, serving.clone())
        })
        .await;
        Self { server, state }
    }

    /// Replaces the behaviour for the requests that arrive from now on.
    pub fn set_behaviour(&self, behaviour: impl Into<Behaviour>) {
        *self.state.behaviour() = behaviour.into();
    }

    /// Every request recorded so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests().clone()
    }

    /// Waits until at least `n` requests have arrived and returns all of them.
    /// Panics if fewer than `n` arrived within `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let mut count = self.state.count.subscribe();
        let _ = tokio::time::timeout(timeout, count.wait_for(|c| *c >= n)).await;
        let got = self.requests();
        assert!(
            got.len() >= n,
            "testkit: expected at least {n} request(s) within {timeout:?}, got {}",
            got.len()
        );
        got
    }
}

/// The address, URLs and CA: the server's.
impl std::ops::Deref for HttpsReceiver {
    type Target = TlsServer;

    fn deref(&self) -> &TlsServer {
        &self.server
    }
}

/// One connection: the TLS handshake, then HTTP/1.1 until the client is done.
async fn serve_connection(tcp: TcpStream, acceptor: TlsAcceptor, state: Arc<State>) {
    // A client that rejects the certificate ends here, before any request.
    let Ok(tls) = acceptor.accept(tcp).await else {
        return;
    };
    local_server::serve_http1(tls, move |request| handle(state.clone(), request)).await;
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<ReplyStream>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let mut headers = BTreeMap::<String, String>::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
        headers,
        body,
        received_at: Instant::now(),
        received_at_system: SystemTime::now(),
    };
    let reply = state.behaviour().next_reply(&recorded);
    {
        let mut requests = state.requests();
        requests.push(recorded);
        state.count.send_replace(requests.len());
    }

    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::new(ReplyStream::from(reply.body));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).expect("testkit: reply status must be 100..=999");
    for (name, value) in reply.headers {
        response.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).expect("testkit: reply header name"),
            HeaderValue::from_str(&value).expect("testkit: reply header value"),
        );
    }
    Ok(response)
}
