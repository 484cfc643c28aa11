//! The local server at the HTTP edges, over real sockets: requests hyper cannot parse
//! still get the JSON error shape, a refused request leaves a reusable connection, and
//! the logs written to a pipe are plain text with the third-party crates capped.

mod support;

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::Server;

const KEY: &str = "avk_edges_admin_key";

/// Sends raw bytes on a fresh connection and reads until the server closes it.
fn exchange(server: &Server, request: &[u8]) -> String {
    let mut socket =
        TcpStream::connect(server.base().trim_start_matches("http://")).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // The server may answer (and close) before it has read everything.
    let _ = socket.write_all(request);
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status, the head and the JSON body of one answer.
fn parse(answer: &str) -> (u16, String, Value) {
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let json = serde_json::from_str(body).unwrap_or(Value::Null);
    (status, head.to_ascii_lowercase(), json)
}

#[tokio::test]
async fn requests_hyper_refuses_get_the_json_error_shape() {
    let server = Server::builder().key("demo", "admin", KEY).start();
    let big_header = [
        &b"GET /org/demo/webhooks/endpoints HTTP/1.1\r\nHost: x\r\nX-Big: "[..],
        &vec![b'a'; 600 * 1024],
        b"\r\n\r\n",
    ]
    .concat();
    let many_headers = [
        &b"GET /org/demo/webhooks/endpoints HTTP/1.1\r\nHost: x\r\n"[..],
        &(0..200)
            .flat_map(|i| format!("X-H{i}: 1\r\n").into_bytes())
            .collect::<Vec<_>>(),
        b"\r\n",
    ]
    .concat();
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    for (request, status, code) in [
        (big_header, 431, "request_header_fields_too_large"),
        (many_headers, 431, "request_header_fields_too_large"),
        (long_uri.into_bytes(), 414, "uri_too_long"),
        (b"NOT HTTP AT ALL\r\n\r\n".to_vec(), 400, "bad_request"),
    ] {
        let (got, head, body) = parse(&exchange(&server, &request));
        assert_eq!(got, status, "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    // And the server is still there.
    assert_eq!(server.get("/org/demo/webhooks/endpoints").await.0, 200);
}

/// A request refused before its body matters (401, 404) has its body read anyway, so the
/// same connection carries the next request; a body refused unread says so.
#[tokio::test]
async fn refused_requests_leave_the_connection_usable() {
    let server = Server::builder().key("demo", "admin", KEY).start();
    // 300 KiB: far more than a socket buffers, so an unread body would break the stream.
    let body = json!({"url": "https://example.com/x", "event_types": ["a.b"]}).to_string()
        + &" ".repeat(300 * 1024);
    let request = |path: &str, key: Option<&str>| {
        let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let pipelined = [
        request("/org/demo/webhooks/endpoints", None),
        request("/org/nosuch/webhooks/endpoints", Some(KEY)),
        request("/org/demo/webhooks/endpoints", Some("avk_wrong_key_here")),
        format!(
            "GET /org/demo/webhooks/endpoints HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\
             Connection: close\r\n\r\n"
        ),
    ]
    .concat();
    let answers = exchange(&server, pipelined.as_bytes());
    let statuses: Vec<&str> = answers
        .match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| answers.get(i + 9..i + 12))
        .collect();
    assert_eq!(statuses, ["401", "404", "401", "200"], "{answers}");

    let huge = format!(
        "POST /org/demo/webhooks/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Length: {}\r\n\r\n",
        600 * 1024
    );
    let (status, head, body) = parse(&exchange(&server, huge.as_bytes()));
    assert_eq!(status, 413);
    assert!(head.contains("connection: close"), "{head}");
    assert_eq!(body["error"]["code"], "payload_too_large");
}

/// Logs to a pipe carry no colour codes, and even `LOG_LEVEL=trace` with a module
/// directive leaves the HTTP and TLS crates at `info` while a delivery is made.
#[tokio::test]
async fn logs_on_a_pipe_are_plain_and_capped() {
    let receiver = testkit::HttpsReceiver::start(testkit::Reply::ok()).await;
    let dir = std::env::temp_dir().join(format!("avw-edges-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let ca = receiver.write_ca_pem(&dir);
    let server = Server::builder()
        .key("demo", "admin", KEY)
        .root_cert(&ca)
        .env(
            "LOG_LEVEL",
            "trace,hyper_util::client::legacy=trace,reqwest=trace,rustls=trace,h2=trace",
        )
        .start();
    let (status, _) = server
        .post(
            "/org/demo/webhooks/endpoints",
            &json!({"url": receiver.url("/hook"), "event_types": ["a.b"]}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = server
        .post(
            "/org/demo/webhooks/events",
            &json!({"type": "a.b", "data": {}}),
        )
        .await;
    assert_eq!(status, 202);
    receiver.wait_for(1, Duration::from_secs(10)).await;
    // The attempt is logged once recorded, after the receiver answered: waited for, as a
    // loaded machine may take longer than any fixed pause.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut logs = server.logs();
    while !logs.contains("attempt recorded") && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        logs = server.logs();
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(logs.contains("attempt recorded"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "colour codes in a pipe:\n{logs}");
    for line in logs.lines() {
        let verbose = line.contains(" TRACE ") || line.contains(" DEBUG ");
        let ours = ["shared", "webhooks_local"].iter().any(|krate| {
            line.contains(&format!(" {krate}::")) || line.contains(&format!(" {krate}:"))
        });
        assert!(!verbose || ours, "a capped crate logged below info: {line}");
    }
}
