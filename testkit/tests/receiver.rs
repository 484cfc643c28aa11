//! The receiver, driven by a plain reqwest client that trusts only its CA.

use std::time::{Duration, Instant};

use testkit::{Behaviour, HttpsReceiver, Reply};

fn client_for(receiver: &HttpsReceiver) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(receiver.ca_pem().as_bytes()).expect("CA PEM");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn records_method_path_headers_and_exact_body() {
    let receiver = HttpsReceiver::start(Reply::ok()).await;
    let client = client_for(&receiver);
    let body: &[u8] = b"{\"a\":1}\n\x00\xff";
    let response = client
        .post(receiver.url("/hook?x=1"))
        .header("Content-Type", "application/json")
        .header("X-Test", "one")
        .header("X-Test", "two")
        .body(body.to_vec())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);

    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    let request = &got[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hook?x=1");
    assert_eq!(request.header("Content-Type"), Some("application/json"));
    assert_eq!(
        request.headers.get("x-test").map(String::as_str),
        Some("one, two")
    );
    assert_eq!(&request.body[..], body);
}

#[tokio::test]
async fn localhost_url_and_missing_slash() {
    let receiver = HttpsReceiver::start(Reply::status(204)).await;
    let client = client_for(&receiver);
    assert!(
        receiver
            .localhost_url("x")
            .starts_with("https://localhost:")
    );
    let response = client
        .get(receiver.localhost_url("x"))
        .send()
        .await
        .expect("send to localhost");
    assert_eq!(response.status(), 204);
    assert_eq!(receiver.requests()[0].path, "/x");
}

#[tokio::test]
async fn sequence_then_fallback_with_headers_and_body() {
    let receiver = HttpsReceiver::start(Behaviour::sequence(
        [
            Reply::status(503).header("Retry-After", "7").body("busy"),
            Reply::status(301).header("Location", "https://example.com/"),
        ],
        Reply::status(202).body("done"),
    ))
    .await;
    let client = client_for(&receiver);
    let url = receiver.url("/s");

    let first = client.post(&url).send().await.expect("first");
    assert_eq!(first.status(), 503);
    assert_eq!(first.headers()["retry-after"], "7");
    assert_eq!(first.text().await.expect("body"), "busy");

    let second = client.post(&url).send().await.expect("second");
    assert_eq!(second.status(), 301);
    assert_eq!(second.headers()["location"], "https://example.com/");

    for _ in 0..2 {
        let later = client.post(&url).send().await.expect("later");
        assert_eq!(later.status(), 202);
        assert_eq!(later.text().await.expect("body"), "done");
    }
    assert_eq!(receiver.requests().len(), 4);
}

#[tokio::test]
async fn closure_sees_the_request_and_behaviour_can_change() {
    let receiver = HttpsReceiver::start(Behaviour::from_fn(|request| {
        if request.body_text() == "fail" {
            Reply::status(500)
        } else {
            Reply::ok()
        }
    }))
    .await;
    let client = client_for(&receiver);
    let url = receiver.url("/f");
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(client.post(&url).body("fail").send().await.expect("send")),
        500
    );
    assert_eq!(
        status(client.post(&url).body("ok").send().await.expect("send")),
        200
    );

    receiver.set_behaviour(Reply::status(418));
    assert_eq!(
        status(client.post(&url).body("ok").send().await.expect("send")),
        418
    );
}

#[tokio::test]
async fn delay_holds_the_answer_but_the_request_is_recorded_first() {
    let receiver = HttpsReceiver::start(Reply::ok().delay(Duration::from_millis(300))).await;
    let client = client_for(&receiver);
    let url = receiver.url("/slow");
    let started = Instant::now();
    let pending = tokio::spawn(async move { client.post(url).send().await.map(|r| r.status()) });

    receiver.wait_for(1, Duration::from_secs(5)).await;
    let status = pending.await.expect("join").expect("send");
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn endless_body_keeps_sending() {
    let receiver =
        HttpsReceiver::start(Reply::ok().endless_body("x".repeat(100), Duration::from_millis(5)))
            .await;
    let client = client_for(&receiver);
    let mut response = client
        .get(receiver.url("/endless"))
        .send()
        .await
        .expect("send");
    let mut total = 0;
    while total < 10_000 {
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .expect("a chunk within 5 s")
            .expect("chunk")
            .expect("the body does not end");
        total += chunk.len();
    }
    drop(response);
}

#[tokio::test]
async fn writes_the_ca_pem() {
    let receiver = HttpsReceiver::start(Behaviour::default()).await;
    let dir = std::env::temp_dir();
    let path = receiver.write_ca_pem(&dir);
    let written = std::fs::read_to_string(&path).expect("read back");
    std::fs::remove_file(&path).expect("clean up");
    assert_eq!(written, receiver.ca_pem());
    assert!(written.starts_with("-----BEGIN CERTIFICATE-----"));
}

#[tokio::test]
async fn wait_for_panics_when_too_few_arrive() {
    let receiver = HttpsReceiver::start(Reply::ok()).await;
    let outcome = tokio::spawn(async move {
        receiver.wait_for(1, Duration::from_millis(50)).await;
    })
    .await;
    assert!(outcome.is_err(), "wait_for should panic");
}

#[tokio::test]
async fn an_untrusting_client_gets_no_request_recorded() {
    let receiver = HttpsReceiver::start(Reply::ok()).await;
    let client = reqwest::Client::builder()
        .tls_certs_only([])
        .no_proxy()
        .build()
        .expect("client");
    assert!(client.get(receiver.url("/")).send().await.is_err());
    assert!(receiver.requests().is_empty());
}
