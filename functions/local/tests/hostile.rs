//! Hostile receivers, end to end through the real `webhooks-local` binary: for each one
//! an endpoint is registered and an event published over the HTTP API, and the first
//! attempt recorded in the delivery detail must have ended within the delivery timeout
//! with exactly the right outcome (`succeeded`, `status_code`, `error.kind`), a body of
//! at most the kept 256 bytes and an error message that gives away neither secrets nor
//! the URL.
//!
//! Meanwhile the API must stay responsive, and receivers offering 50 MiB bodies must not
//! grow the server's memory.
//!
//! `DELIVERY_TIMEOUT_MS=2000` keeps the slow cases short; `RETRY_SCHEDULE=3600` puts any
//! retry an hour away, so every delivery here makes exactly one attempt.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};
use testkit::raw::{ConnectionLog, End, RawTlsReceiver, Script, Step, response_head};
use testkit::{HttpsReceiver, Reply, TempDir, TestCa};
use tokio::sync::{Barrier, watch};

use support::Server;

/// `DELIVERY_TIMEOUT_MS` given to the server.
const TIMEOUT_MS: u64 = 2000;
/// Scheduling slack allowed past the timeout on a loaded two-core machine.
const MARGIN_MS: u64 = 1000;
/// What the delivery detail shows of a response body: the first 256 bytes, kept for the
/// latest attempt. (The sender reads at most 4 KiB of it, `RESPONSE_BODY_CAP`, and drops
/// the rest with the connection; `shared/tests/http_client.rs` checks that cut.)
const BODY_CAP: usize = shared::domain::delivery::KEPT_BODY_BYTES;
/// The admin key of org `demo`.
const KEY: &str = "avk_hostile_test_admin";
/// A credential-looking token in every endpoint URL: it must never show up in an error.
const URL_TOKEN: &str = "tok_in_the_url_0123456789";
/// How long a GET of the endpoint list may take while hostile receivers hold the
/// sender's connections open.
const RESPONSIVE_MS: u64 = 500;
/// The bound for any GET, including those during the burst of TLS handshakes right after
/// a publish (CPU work for both processes on two cores): still half the delivery timeout,
/// so an API that waited on a receiver would fail it.
const ANY_PROBE_MS: u64 = TIMEOUT_MS / 2;
/// The size of the huge bodies.
const HUGE: u64 = 50 * 1024 * 1024;

const ENDPOINTS: &str = "/org/demo/webhooks/endpoints";
const EVENTS: &str = "/org/demo/webhooks/events";

fn start_server(ca_pem: &std::path::Path) -> Server {
    Server::builder()
        .key("demo", "admin", KEY)
        .root_cert(ca_pem)
        .env("DELIVERY_TIMEOUT_MS", &TIMEOUT_MS.to_string())
        .env("RETRY_SCHEDULE", "3600")
        .start()
}

/// An endpoint as created: its id, its signing secret and its URL.
struct Endpoint {
    id: String,
    secret: String,
    url: String,
}

async fn register(server: &Server, url: String, event_type: &str) -> Endpoint {
    let (status, created) = server
        .post(
            ENDPOINTS,
            &json!({"url": url, "description": "hostile", "event_types": [event_type]}),
        )
        .await;
    assert_eq!(status, 201, "create {url}: {created}");
    Endpoint {
        id: created["id"].as_str().expect("endpoint id").to_owned(),
        secret: created["secret"].as_str().expect("secret").to_owned(),
        url,
    }
}

async fn publish(server: &Server, event_type: &str, expected_deliveries: usize) {
    let (status, published) = server
        .post(
            EVENTS,
            &json!({"type": event_type, "data": {"probe": "hostile"}}),
        )
        .await;
    assert_eq!(status, 202, "{published}");
    assert_eq!(published["deliveries"], expected_deliveries, "{published}");
}

/// The endpoint's (only) delivery once its first attempt is recorded, and when it was
/// seen. Panics if that takes longer than `limit`.
async fn first_attempt(server: &Server, endpoint_id: &str, limit: Duration) -> (Value, Instant) {
    let deadline = Instant::now() + limit;
    let mut last = Value::Null;
    loop {
        let (status, listed) = server
            .get(&format!("{ENDPOINTS}/{endpoint_id}/deliveries"))
            .await;
        assert_eq!(status, 200, "{listed}");
        if let Some(delivery_id) = listed["deliveries"][0]["id"].as_str() {
            let (status, detail) = server
                .get(&format!("/org/demo/webhooks/deliveries/{delivery_id}"))
                .await;
            assert_eq!(status, 200, "{detail}");
            if detail["attempts"]
                .as_array()
                .is_some_and(|attempts| !attempts.is_empty())
            {
                return (detail, Instant::now());
            }
            last = detail;
        }
        assert!(
            Instant::now() < deadline,
            "no attempt recorded for endpoint {endpoint_id} within {limit:?}; last seen: {last}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One GET of the endpoint list: when it started, how long it took, its status.
#[derive(Debug, Clone, Copy)]
struct Probe {
    started: Instant,
    took: Duration,
    status: u16,
}

/// GETs the endpoint list every 100 ms until `stop` turns true.
/// How long a test waits for an attempt to show, or a receiver's connection to end.
const LIMIT: Duration = Duration::from_millis(TIMEOUT_MS + 10_000);

/// Publish one event of `event_type` to `endpoints`, and wait for each one's first
/// attempt, and then for `settled`, while the API is probed; the probes and the attempts.
async fn publish_and_probe(
    server: &Server,
    event_type: &str,
    endpoints: &[Endpoint],
    settled: impl Future<Output = ()>,
) -> (Vec<Probe>, Vec<(Value, Instant)>) {
    publish(server, event_type, endpoints.len()).await;
    let (stop, stopped) = watch::channel(false);
    tokio::join!(probe_api(server, stopped), async {
        let attempts = join_all(
            endpoints
                .iter()
                .map(|endpoint| first_attempt(server, &endpoint.id, LIMIT)),
        )
        .await;
        settled.await;
        let _ = stop.send(true);
        attempts
    })
}

async fn probe_api(server: &Server, mut stop: watch::Receiver<bool>) -> Vec<Probe> {
    let mut probes = Vec::new();
    while !*stop.borrow() {
        let started = Instant::now();
        let (status, _) = server.get(ENDPOINTS).await;
        probes.push(Probe {
            started,
            took: started.elapsed(),
            status,
        });
        let _ = tokio::time::timeout(Duration::from_millis(100), stop.wait_for(|s| *s)).await;
    }
    probes
}

/// Every probe answered 200 within [`ANY_PROBE_MS`], and those inside `window` (if
/// given) within [`RESPONSIVE_MS`]; returns how many fell inside the window.
fn assert_responsive(label: &str, probes: &[Probe], window: Option<(Instant, Instant)>) -> usize {
    let inside =
        |p: &&Probe| window.is_some_and(|(from, to)| p.started >= from && p.started + p.took <= to);
    let slowest = |probes: &mut dyn Iterator<Item = &Probe>| {
        probes.map(|p| p.took.as_millis()).max().unwrap_or_default()
    };
    let in_window = probes.iter().filter(inside).count();
    let mut line = format!(
        "{label}: {} GETs of the endpoint list, slowest {} ms",
        probes.len(),
        slowest(&mut probes.iter())
    );
    if window.is_some() {
        line.push_str(&format!(
            "; {in_window} while the slow receivers held their connections, slowest of those {} ms",
            slowest(&mut probes.iter().filter(inside))
        ));
    }
    eprintln!("{line}");
    for probe in probes {
        assert_eq!(probe.status, 200, "{label}: {probe:?}");
        let bound = if inside(&probe) {
            RESPONSIVE_MS
        } else {
            ANY_PROBE_MS
        };
        assert!(
            probe.took <= Duration::from_millis(bound),
            "{label}: the API took {} ms to list endpoints (bound {bound} ms)",
            probe.took.as_millis()
        );
    }
    in_window
}

/// What an attempt must show.
struct Expected {
    succeeded: bool,
    status_code: Option<u16>,
    kind: Option<&'static str>,
    /// The exact message, or `None` to check only that it leaks nothing.
    message: Option<&'static str>,
    body: Body,
    /// Ends at the deadline (`true`) or well before it (`false`).
    at_deadline: bool,
}

/// What a receiver that never completes its answer head yields: the 2 s deadline.
const TIMED_OUT: Expected = Expected {
    succeeded: false,
    status_code: None,
    kind: Some("timeout"),
    message: Some("no complete answer within 2000 ms"),
    body: Body::Empty,
    at_deadline: true,
};

enum Body {
    Empty,
    /// Exactly [`BODY_CAP`] copies of this byte.
    FullCap(u8),
    /// A non-empty prefix of this text repeated, shorter than the cap.
    Partial(&'static str),
}

/// Checks the delivery `detail` against `expected`; `name` labels failures, `forbidden`
/// lists what the error message must not contain.
fn check_attempt(name: &str, detail: &Value, expected: &Expected, forbidden: &[String]) {
    let attempts = detail["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1, "{name}: exactly one attempt: {detail}");
    let attempt = &attempts[0];
    assert_eq!(attempt["attempt_number"], 1, "{name}: {attempt}");
    assert_eq!(attempt["trigger"], "automatic", "{name}: {attempt}");
    assert_eq!(
        attempt["succeeded"], expected.succeeded,
        "{name}: succeeded: {attempt}"
    );
    assert_eq!(
        attempt["status_code"].as_u64(),
        expected.status_code.map(u64::from),
        "{name}: status_code: {attempt}"
    );
    assert_eq!(
        attempt["error"]["kind"].as_str(),
        expected.kind,
        "{name}: error.kind: {attempt}"
    );
    if expected.kind.is_none() {
        assert!(attempt["error"].is_null(), "{name}: {attempt}");
    }
    let status = if expected.succeeded {
        "succeeded"
    } else {
        "retrying"
    };
    assert_eq!(
        detail["status"], status,
        "{name}: delivery status: {detail}"
    );

    let duration = attempt["duration_ms"].as_u64().expect("duration_ms");
    assert!(
        duration <= TIMEOUT_MS + MARGIN_MS,
        "{name}: the attempt took {duration} ms, timeout {TIMEOUT_MS} ms"
    );
    if expected.at_deadline {
        assert!(
            duration >= TIMEOUT_MS,
            "{name}: ended after {duration} ms, before the {TIMEOUT_MS} ms deadline"
        );
    } else {
        assert!(
            duration < TIMEOUT_MS,
            "{name}: took {duration} ms: it should not have needed the deadline"
        );
    }

    let body = attempt["response_body"].as_str().expect("response_body");
    assert!(
        body.len() <= BODY_CAP,
        "{name}: body of {} bytes",
        body.len()
    );
    match expected.body {
        Body::Empty => assert_eq!(body, "", "{name}"),
        Body::FullCap(byte) => assert!(
            body.len() == BODY_CAP && body.bytes().all(|b| b == byte),
            "{name}: expected {BODY_CAP} × {:?}, got {} bytes starting {:?}",
            char::from(byte),
            body.len(),
            &body[..body.len().min(40)]
        ),
        Body::Partial(unit) => {
            assert!(
                body.len() < BODY_CAP && body.starts_with(unit),
                "{name}: {body:?}"
            );
            assert!(
                unit.repeat(body.len() / unit.len() + 1).starts_with(body),
                "{name}: {body:?}"
            );
        }
    }

    if let Some(message) = attempt["error"]["message"].as_str() {
        if let Some(exact) = expected.message {
            assert_eq!(message, exact, "{name}: error.message");
        }
        assert!(message.len() <= 200, "{name}: long message {message:?}");
        for secret in forbidden {
            assert!(
                !message.contains(secret.as_str()),
                "{name}: error.message {message:?} leaks {secret:?}"
            );
        }
    }
}

/// What no error message may contain for this endpoint: its URL and the parts of it,
/// its secret, the API key, and the bodies receivers sent.
fn forbidden_in_messages(endpoint: &Endpoint, ports: &[u16]) -> Vec<String> {
    let mut forbidden = vec![
        endpoint.url.clone(),
        endpoint.secret.clone(),
        endpoint.secret.trim_start_matches("whsec_").to_owned(),
        "whsec_".to_owned(),
        KEY.to_owned(),
        URL_TOKEN.to_owned(),
        "token".to_owned(),
        "/hook".to_owned(),
        "127.0.0.1".to_owned(),
        "localhost".to_owned(),
        "zzzz".to_owned(),
        "tick".to_owned(),
        "xxxx".to_owned(),
    ];
    forbidden.extend(ports.iter().map(u16::to_string));
    forbidden
}

/// The connection's life from the request's arrival to its end.
fn request_to_end(log: &ConnectionLog) -> (Instant, Instant) {
    let request = log
        .request
        .as_ref()
        .expect("the request arrived")
        .received_at;
    let (ended, _) = log.ended.expect("the connection ended");
    (request, ended)
}

/// Receivers 1 to 6, all at once against one server: each delivery's first attempt has
/// the outcome it must have, within the timeout, while the API keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_receivers_end_within_the_timeout_with_the_right_outcome() {
    let test_started = Instant::now();
    let ca = TestCa::new();
    let dir = TempDir::new("hostile-outcomes");
    let ca_path = ca.write_pem(dir.path());

    // 1. Completes TLS, reads the request, never answers.
    let silent = RawTlsReceiver::start(&ca, Script::silent()).await;
    // 2. Endless bodies: as fast as possible (stops at the cap) and slow (stops at the
    //    deadline), after a 200 and after a 500.
    let fast = |status| Reply::status(status).endless_body("z".repeat(1000), Duration::ZERO);
    let slow = |status| Reply::status(status).endless_body("tick\n", Duration::from_millis(100));
    let endless_fast_200 = HttpsReceiver::start_with_ca(&ca, fast(200)).await;
    let endless_fast_500 = HttpsReceiver::start_with_ca(&ca, fast(500)).await;
    let endless_slow_200 = HttpsReceiver::start_with_ca(&ca, slow(200)).await;
    let endless_slow_500 = HttpsReceiver::start_with_ca(&ca, slow(500)).await;
    // 3. The status line and headers a byte every 100 ms: 23 s to finish.
    let trickled_head = format!("HTTP/1.1 200 OK\r\nX-Padding: {}\r\n\r\n", "p".repeat(200));
    let trickle = RawTlsReceiver::start(
        &ca,
        Script::trickled(trickled_head.clone(), Duration::from_millis(100)),
    )
    .await;
    // 4. RST once the request is in.
    let reset = RawTlsReceiver::start(&ca, Script::reset_after_request()).await;
    // 5. A certificate from a CA the server was not given.
    let untrusted = HttpsReceiver::start(Reply::ok()).await;
    // 6. A 307 to a second receiver, which must never be asked anything.
    let landing = HttpsReceiver::start_with_ca(&ca, Reply::ok()).await;
    let redirect = HttpsReceiver::start_with_ca(
        &ca,
        Reply::status(307).header(
            "Location",
            landing.url(&format!("/landing?token={URL_TOKEN}")),
        ),
    )
    .await;

    let server = start_server(&ca_path);
    let hook = |name: &str| format!("/hook/{name}?token={URL_TOKEN}");
    let event_type = "hostile.probe";
    let cases: Vec<(&str, String, Expected)> = vec![
        ("never answers", silent.url(&hook("silent")), TIMED_OUT),
        (
            "endless fast body after 200",
            endless_fast_200.url(&hook("endless-fast-200")),
            Expected {
                succeeded: true,
                status_code: Some(200),
                kind: None,
                message: None,
                body: Body::FullCap(b'z'),
                at_deadline: false,
            },
        ),
        (
            "endless fast body after 500",
            endless_fast_500.url(&hook("endless-fast-500")),
            Expected {
                succeeded: false,
                status_code: Some(500),
                kind: Some("http_status"),
                message: Some("HTTP 500"),
                body: Body::FullCap(b'z'),
                at_deadline: false,
            },
        ),
        (
            "endless slow body after 200",
            endless_slow_200.url(&hook("endless-slow-200")),
            Expected {
                succeeded: true,
                status_code: Some(200),
                kind: None,
                message: None,
                body: Body::Partial("tick\n"),
                at_deadline: true,
            },
        ),
        (
            "endless slow body after 500",
            endless_slow_500.url(&hook("endless-slow-500")),
            Expected {
                succeeded: false,
                status_code: Some(500),
                kind: Some("http_status"),
                message: Some("HTTP 500"),
                body: Body::Partial("tick\n"),
                at_deadline: true,
            },
        ),
        ("trickled head", trickle.url(&hook("trickle")), TIMED_OUT),
        (
            "reset after the request",
            reset.url(&hook("reset")),
            Expected {
                succeeded: false,
                status_code: None,
                // Connected and sent: the receiver may have acted on the request.
                kind: Some("connect"),
                message: Some("connection reset after the request was sent"),
                body: Body::Empty,
                at_deadline: false,
            },
        ),
        (
            "untrusted CA",
            untrusted.url(&hook("untrusted")),
            Expected {
                succeeded: false,
                status_code: None,
                kind: Some("tls"),
                message: Some("TLS: certificate issued by an authority that is not trusted"),
                body: Body::Empty,
                at_deadline: false,
            },
        ),
        (
            "redirect",
            redirect.url(&hook("redirect")),
            Expected {
                succeeded: false,
                status_code: Some(307),
                kind: Some("redirect"),
                message: Some("HTTP 307: redirects are not followed"),
                body: Body::Empty,
                at_deadline: false,
            },
        ),
    ];
    let ports = [
        silent.port(),
        endless_fast_200.port(),
        endless_fast_500.port(),
        endless_slow_200.port(),
        endless_slow_500.port(),
        trickle.port(),
        reset.port(),
        untrusted.port(),
        landing.port(),
        redirect.port(),
    ];

    let mut endpoints = Vec::new();
    for (_, url, _) in &cases {
        endpoints.push(register(&server, url.clone(), event_type).await);
    }

    let published_at = Instant::now();
    let (probes, attempts) = publish_and_probe(&server, event_type, &endpoints, async {
        // Keep probing until the slow raw receivers have seen their connection end.
        silent.wait_for_ended(1, LIMIT).await;
        trickle.wait_for_ended(1, LIMIT).await;
    })
    .await;

    let mut report = BTreeMap::new();
    for (((name, _, expected), endpoint), (detail, seen_at)) in
        cases.iter().zip(&endpoints).zip(&attempts)
    {
        check_attempt(
            name,
            detail,
            expected,
            &forbidden_in_messages(endpoint, &ports),
        );
        // Wall clock: publish → attempt visible in the API, bounded whatever the server
        // says its duration was.
        let wall = seen_at.duration_since(published_at);
        assert!(
            wall <= Duration::from_millis(TIMEOUT_MS + MARGIN_MS + 2000),
            "{name}: attempt visible only {} ms after publishing",
            wall.as_millis()
        );
        let text = detail.to_string();
        assert!(
            !text.contains(&endpoint.secret),
            "{name}: the delivery detail holds the secret"
        );
        let attempt = &detail["attempts"][0];
        report.insert(
            *name,
            format!(
                "{} ms (visible after {} ms), status {}, error {}, body {} bytes",
                attempt["duration_ms"],
                wall.as_millis(),
                attempt["status_code"],
                attempt["error"],
                attempt["response_body"].as_str().map_or(0, str::len)
            ),
        );
    }
    for (name, line) in &report {
        eprintln!("{name}: {line}");
    }

    // 1 and 3 at the socket: the request arrived, then the client hung up at the
    // deadline, not when the receiver gave up (it never would have).
    for (name, receiver) in [("never answers", &silent), ("trickled head", &trickle)] {
        let logs = receiver.connections();
        assert_eq!(logs.len(), 1, "{name}: one connection: {logs:?}");
        let (request, ended) = request_to_end(&logs[0]);
        let held = ended.duration_since(request);
        assert!(
            held <= Duration::from_millis(TIMEOUT_MS + MARGIN_MS),
            "{name}: the sender held the connection {} ms",
            held.as_millis()
        );
        eprintln!(
            "{name}: connection held {} ms by the sender, {} bytes sent, ended {:?}",
            held.as_millis(),
            logs[0].bytes_sent,
            logs[0].ended.map(|(_, how)| how)
        );
    }
    let silent_log = &silent.connections()[0];
    assert_eq!(silent_log.bytes_sent, 0);
    assert!(
        matches!(silent_log.ended, Some((_, End::ClientClosed))),
        "{silent_log:?}"
    );
    let trickle_log = &trickle.connections()[0];
    assert!(
        trickle_log.bytes_sent >= 1 && trickle_log.bytes_sent < trickled_head.len() as u64,
        "the head was trickled and never finished: {trickle_log:?}"
    );

    // 4: the reset came after the whole request.
    let reset_logs = reset.wait_for_ended(1, Duration::from_secs(5)).await;
    let reset_request = reset_logs[0].request.as_ref().expect("request read");
    assert!(
        reset_request
            .request_line()
            .starts_with("POST /hook/reset?")
    );
    assert!(!reset_request.body.is_empty());
    assert!(matches!(reset_logs[0].ended, Some((_, End::Reset))));

    // 5: the handshake failed, nothing was asked.
    assert!(untrusted.requests().is_empty());

    // 6: one request to the redirecting receiver, none to where it pointed.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(redirect.requests().len(), 1);
    assert!(
        landing.requests().is_empty(),
        "the redirect was followed: {:?}",
        landing.requests()
    );

    // The API while 1 and 3 were in flight: at least 5 answers fell entirely inside the
    // time both connections were open.
    let (silent_request, silent_end) = request_to_end(silent_log);
    let (trickle_request, trickle_end) = request_to_end(trickle_log);
    let window = (
        silent_request.max(trickle_request),
        silent_end.min(trickle_end),
    );
    let inside = assert_responsive("API probes", &probes, Some(window));
    assert!(
        inside >= 5,
        "only {inside} API probe(s) while the slow receivers were in flight: {probes:?}"
    );

    assert!(server.terminate().0.success());
    eprintln!(
        "hostile receivers: {} ms in all",
        test_started.elapsed().as_millis()
    );
}

/// Receivers answering 500 or 200 with a 50 MiB `Content-Length` body, sent as fast as
/// the socket takes it, eight at once: each attempt reads 4 KiB, keeps 256 bytes and
/// drops the rest with the connection, and the server's peak memory barely moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_megabyte_bodies_are_cut_at_the_cap_and_memory_stays_bounded() {
    const RECEIVERS: usize = 8;
    let test_started = Instant::now();
    let ca = TestCa::new();
    let dir = TempDir::new("hostile-memory");
    let ca_path = ca.write_pem(dir.path());

    // No receiver answers before all of them have a request: the eight deliveries are
    // provably in flight at once.
    let gate = Arc::new(Barrier::new(RECEIVERS));
    let mut huge = Vec::new();
    for i in 0..RECEIVERS {
        let status = if i % 2 == 0 { 500 } else { 200 };
        let script = Script::new([
            Step::ReadRequest,
            Step::Barrier(gate.clone()),
            Step::Send(response_head(
                status,
                &[
                    ("Content-Length", &HUGE.to_string()),
                    ("Content-Type", "text/plain"),
                ],
            )),
            Step::Fill {
                len: HUGE,
                byte: b'x',
            },
        ]);
        huge.push((status, RawTlsReceiver::start(&ca, script).await));
    }
    let warm_up = HttpsReceiver::start_with_ca(&ca, Reply::ok().body("warm")).await;

    let server = start_server(&ca_path);

    // One ordinary delivery first, so the baseline includes a client that has done TLS.
    let warm = register(&server, warm_up.url("/hook/warm-up"), "warm.up").await;
    publish(&server, "warm.up", 1).await;
    let (detail, _) = first_attempt(&server, &warm.id, Duration::from_secs(10)).await;
    assert_eq!(detail["attempts"][0]["succeeded"], true, "{detail}");
    let before = server.memory().expect("/proc/PID/status (Linux)");

    let mut endpoints = Vec::new();
    for (i, (_, receiver)) in huge.iter().enumerate() {
        let url = receiver.url(&format!("/hook/huge-{i}?token={URL_TOKEN}"));
        endpoints.push(register(&server, url, "huge.body").await);
    }
    let published_at = Instant::now();
    let (probes, attempts) = publish_and_probe(&server, "huge.body", &endpoints, async {
        for (_, receiver) in &huge {
            receiver.wait_for_ended(1, LIMIT).await;
        }
    })
    .await;
    let all_done = published_at.elapsed();
    let after = server.memory().expect("/proc/PID/status (Linux)");

    let ports: Vec<u16> = huge.iter().map(|(_, r)| r.port()).collect();
    let mut sent_total = 0_u64;
    for (((status, receiver), endpoint), (detail, _)) in huge.iter().zip(&endpoints).zip(&attempts)
    {
        let name = format!("50 MiB body after {status}");
        let expected = Expected {
            succeeded: *status == 200,
            status_code: Some(*status),
            kind: (*status != 200).then_some("http_status"),
            message: (*status != 200).then_some("HTTP 500"),
            body: Body::FullCap(b'x'),
            at_deadline: false,
        };
        check_attempt(
            &name,
            detail,
            &expected,
            &forbidden_in_messages(endpoint, &ports),
        );
        let logs = receiver.connections();
        assert_eq!(logs.len(), 1, "{name}: {logs:?}");
        let log = &logs[0];
        // The sender stopped reading and closed: the receiver could not send it all.
        assert!(
            log.bytes_sent < HUGE,
            "{name}: the whole body was read ({} bytes)",
            log.bytes_sent
        );
        assert!(
            !matches!(log.ended, Some((_, End::Completed))),
            "{name}: {log:?}"
        );
        sent_total += log.bytes_sent;
        eprintln!(
            "{name}: attempt {} ms, receiver got {} of {HUGE} bytes out before the sender hung up ({:?})",
            detail["attempts"][0]["duration_ms"],
            log.bytes_sent,
            log.ended.map(|(_, how)| how)
        );
    }

    let offered = HUGE * RECEIVERS as u64;
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let growth = after.hwm.saturating_sub(before.hwm);
    eprintln!(
        "memory of webhooks-local: VmRSS {:.1} → {:.1} MiB, VmHWM {:.1} → {:.1} MiB \
         (peak growth {:.1} MiB) for {RECEIVERS} deliveries in flight at once, {:.0} MiB \
         offered, {:.1} MiB actually written by the receivers; all attempts recorded {} ms \
         after publishing",
        mib(before.rss),
        mib(after.rss),
        mib(before.hwm),
        mib(after.hwm),
        mib(growth),
        mib(offered),
        mib(sent_total),
        all_done.as_millis()
    );
    assert!(offered >= 200_000_000);
    assert!(
        growth < 32 * 1024 * 1024,
        "peak memory grew by {:.1} MiB while {:.0} MiB were offered",
        mib(growth),
        mib(offered)
    );
    // The bodies are cut within milliseconds, so these probes bracket the transfers
    // rather than fall inside them; the slow receivers of the other test are where the
    // API is shown to answer while deliveries hang.
    assert_responsive("API probes (50 MiB bodies)", &probes, None);

    assert!(server.terminate().0.success());
    eprintln!(
        "50 MiB bodies: {} ms in all",
        test_started.elapsed().as_millis()
    );
}
