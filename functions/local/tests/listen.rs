//! `webhooks-local listen` (README, "Local listener"): the real binary as listener and
//! server, a plain-HTTP app the listener forwards to, every line the listener prints.

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::Server;

const ADMIN: &str = "avk_listen_test_admin";

/// A running `webhooks-local listen`; killed when dropped.
struct Listener {
    child: Child,
    lines: mpsc::Receiver<String>,
    endpoint_id: String,
    url: String,
    secret: String,
}

impl Listener {
    fn start(server: &Server, extra: &[&str]) -> Self {
        Self::start_with_key(server, ADMIN, extra)
    }

    fn start_with_key(server: &Server, key: &str, extra: &[&str]) -> Self {
        Self::start_with_env(server, key, extra, &[])
    }

    /// With `env` set in its environment (and no `NO_PROXY`, whatever the test's own is).
    fn start_with_env(server: &Server, key: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_webhooks-local"))
            .args([
                "listen",
                "--key",
                key,
                "--events",
                "alert.fired,alert.resolved",
                "--server",
                server.base(),
            ])
            .args(extra)
            .env("XDG_CACHE_HOME", support::cache_dir())
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the listener");
        let lines = support::line_channel(child.stdout.take().expect("stdout"));
        let first = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the endpoint line");
        let mut words = first.split(' ');
        assert_eq!(words.next(), Some("endpoint"), "{first}");
        let endpoint_id = words.next().expect("id").to_owned();
        let url = words.next().expect("url").to_owned();
        let second = lines
            .recv_timeout(Duration::from_secs(5))
            .expect("the secret line");
        let secret = second
            .strip_prefix("secret ")
            .unwrap_or_else(|| panic!("secret line, got {second}"))
            .to_owned();
        Self {
            child,
            lines,
            endpoint_id,
            url,
            secret,
        }
    }

    /// The next delivery line, as JSON.
    fn next_delivery(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(30))
            .expect("a delivery line within 30 s");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// SIGTERM; the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the listener did not exit within 10 s of SIGTERM");
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the app received: headers and body of each request.
type Received = Arc<Mutex<Vec<(hyper::HeaderMap, Bytes)>>>;

/// A plain-HTTP app on loopback answering `status` (changeable) with a body.
async fn app(status: Arc<AtomicU16>) -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let received: Received = Arc::default();
    let seen = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let status = status.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let status = status.clone();
                    let seen = seen.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        seen.lock().expect("lock").push((parts.headers, body));
                        let code = status.load(Ordering::SeqCst);
                        let mut response = hyper::Response::new(Full::new(Bytes::from(format!(
                            "app says {code}"
                        ))));
                        *response.status_mut() = hyper::StatusCode::from_u16(code).expect("status");
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (format!("http://{addr}/hooks"), received)
}

fn server() -> Server {
    Server::builder()
        .key("demo", "admin", ADMIN)
        .env("RETRY_SCHEDULE", "1,1,1,1,1,1")
        .env("CIRCUIT_BREAKER_THRESHOLD", "3")
        .kill_after(Duration::from_secs(120))
        .start()
}

async fn publish(server: &Server, id: &str) {
    let event = json!({"id": id, "type": "alert.fired", "data": {"n": 1.50, "b": [1, 2]}});
    server.publish("demo", &event).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_relays_the_apps_status_and_the_breaker_and_resume_follow() {
    let server = server();
    let status = Arc::new(AtomicU16::new(500));
    let (app_url, received) = app(status.clone()).await;
    let listener = Listener::start(&server, &["--forward-to", &app_url]);
    assert!(
        listener.url.starts_with("https://127.0.0.1:"),
        "{}",
        listener.url
    );
    assert!(listener.secret.starts_with("whsec_"));

    let endpoint = format!("/org/demo/webhooks/endpoints/{}", listener.endpoint_id);
    let (_, listed) = server.get("/org/demo/webhooks/endpoints").await;
    assert_eq!(listed["endpoints"][0]["url"], listener.url.as_str());
    assert_eq!(
        listed["endpoints"][0]["event_types"],
        json!(["alert.fired", "alert.resolved"])
    );

    // The app fails: three attempts, each verified and relayed, then the breaker.
    publish(&server, "evt_listen_1").await;
    let mut delivery_id = Value::Null;
    for _ in 0..3 {
        let line = listener.next_delivery();
        assert_eq!(line["verified"], true, "{line}");
        assert_eq!(line["forwarded_status"], 500, "{line}");
        assert_eq!(line["event_type"], "alert.fired", "{line}");
        delivery_id = line["delivery_id"].clone();
    }
    let delivery = format!(
        "/org/demo/webhooks/deliveries/{}",
        delivery_id.as_str().expect("delivery id")
    );
    let mut paused = false;
    for _ in 0..50 {
        if listed_endpoint(&server, &listener.endpoint_id).await["is_active"] == false {
            paused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(paused, "three failures pause the endpoint");
    let (_, detail) = server.get(&delivery).await;
    assert_eq!(detail["attempts"][2]["status_code"], 500, "{detail}");
    assert_eq!(
        detail["attempts"][2]["response_body"], "app says 500",
        "the app's answer is relayed (the latest attempt's is kept)"
    );

    // The app got the delivery's bytes and headers unchanged.
    {
        let seen = received.lock().expect("lock");
        let (headers, body) = &seen[0];
        let sent: Value = serde_json::from_slice(body).expect("JSON body");
        assert_eq!(sent, detail["payload"]);
        for name in [
            "x-agentvista-signature",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "x-agentvista-event",
            "x-agentvista-delivery",
            "user-agent",
            "content-type",
        ] {
            assert!(headers.contains_key(name), "{name} forwarded");
        }
        assert_eq!(headers["webhook-id"], delivery_id.as_str().expect("id"));
        assert_eq!(headers["content-type"], "application/json");
        assert!(
            headers["user-agent"]
                .to_str()
                .is_ok_and(|ua| ua.starts_with("AgentVista-Webhooks/"))
        );
        // Byte for byte: the signatures the service made still verify on what the app
        // got (one changed byte or header would break them).
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let verified = shared::signing::verify(
            &shared::domain::SigningSecret::from_stored(listener.secret.clone()),
            &shared::signing::ReceivedSignatures {
                agentvista_signature: header("x-agentvista-signature"),
                webhook_id: header("webhook-id"),
                webhook_timestamp: header("webhook-timestamp"),
                webhook_signature: header("webhook-signature"),
            },
            body,
            chrono::Utc::now().timestamp(),
        );
        assert!(verified.both(), "{verified:?}");
    }

    // The app recovers; resuming drains the held delivery.
    status.store(200, Ordering::SeqCst);
    let (code, _) = server.patch(&endpoint, &json!({"is_active": true})).await;
    assert_eq!(code, 200);
    let line = listener.next_delivery();
    assert_eq!(
        (
            &line["delivery_id"],
            &line["forwarded_status"],
            &line["verified"]
        ),
        (&delivery_id, &json!(200), &json!(true)),
        "{line}"
    );
    let mut succeeded = false;
    for _ in 0..50 {
        let (_, d) = server.get(&delivery).await;
        if d["status"] == "succeeded" {
            succeeded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(succeeded, "the resumed delivery succeeds");

    // Stopping deletes the endpoint it registered, and exits 0.
    let id = listener.endpoint_id.clone();
    assert!(listener.terminate().success());
    assert_eq!(
        listed_endpoint(&server, &id).await,
        Value::Null,
        "the listener's endpoint is gone"
    );
}

/// The endpoint as the list shows it (`null` if absent).
async fn listed_endpoint(server: &Server, id: &str) -> Value {
    let (_, listed) = server.get("/org/demo/webhooks/endpoints").await;
    listed["endpoints"]
        .as_array()
        .and_then(|all| all.iter().find(|e| e["id"] == id))
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_200_without_an_app_and_502_when_the_app_is_down() {
    let server = server();
    let alone = Listener::start(&server, &[]);
    publish(&server, "evt_listen_2").await;
    let line = alone.next_delivery();
    assert_eq!(line["verified"], true, "{line}");
    assert_eq!(line["forwarded_status"], Value::Null, "{line}");
    drop(alone);

    // An app that is not running: the service is answered 502, so it retries.
    let listener = Listener::start(
        &server,
        &["--forward-to", &format!("http://{}/hooks", dead_address())],
    );
    publish(&server, "evt_listen_3").await;
    let line = listener.next_delivery();
    assert_eq!(line["forwarded_status"], 502, "{line}");
}

/// A loopback address nothing listens on.
fn dead_address() -> std::net::SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    probe.local_addr().expect("addr")
}

/// Proxy variables, in either case, are ignored: with them pointing at a dead address
/// the listener still registers through the API and forwards to the app. A request
/// whose signatures do not verify is printed as unverified, answered 401 and not
/// forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignores_proxies_and_forwards_only_verified_deliveries() {
    let server = server();
    let (app_url, received) = app(Arc::new(AtomicU16::new(200))).await;
    let proxy = format!("http://{}", dead_address());
    let env: Vec<(&str, &str)> = [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ]
    .into_iter()
    .map(|name| (name, proxy.as_str()))
    .collect();
    let listener = Listener::start_with_env(&server, ADMIN, &["--forward-to", &app_url], &env);
    publish(&server, "evt_listen_proxy").await;
    let line = listener.next_delivery();
    assert_eq!(
        (&line["verified"], &line["forwarded_status"]),
        (&json!(true), &json!(200)),
        "{line}"
    );
    assert_eq!(received.lock().expect("lock").len(), 1);

    // Signed with another secret (or not at all).
    let ca = std::fs::read(support::cache_dir().join("agentvista-webhooks/dev-ca-v1/ca-cert.pem"))
        .expect("the development CA, made in the cache directory");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("PEM"))
        .no_proxy()
        .build()
        .expect("client");
    let forged = client
        .post(&listener.url)
        .header("x-agentvista-delivery", "forged")
        .header("x-agentvista-event", "alert.fired")
        .header("webhook-id", "forged")
        .header(
            "webhook-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header("webhook-signature", "v1,AAAA")
        .header("x-agentvista-signature", "t=1,v1=00")
        .body("{}")
        .send()
        .await
        .expect("the listener's certificate chains to the development CA");
    assert_eq!(forged.status(), 401);
    let body: Value = forged.json().await.expect("a JSON error");
    assert_eq!(body["error"]["code"], "signature_invalid", "{body}");
    let line = listener.next_delivery();
    assert_eq!(
        line,
        json!({
            "delivery_id": "forged",
            "event_type": "alert.fired",
            "verified": false,
            "forwarded_status": null,
        })
    );
    assert_eq!(received.lock().expect("lock").len(), 1, "not forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acts_for_the_keys_own_organisation_unless_told() {
    const ACME: &str = "avk_listen_test_acme_admin";
    let server = Server::builder()
        .key("demo", "admin", ADMIN)
        .key("acme", "admin", ACME)
        .start();
    let listener = Listener::start_with_key(&server, ACME, &[]);
    let (_, listed) = server
        .request_as(
            Some(ACME),
            reqwest::Method::GET,
            "/org/acme/webhooks/endpoints",
            None,
        )
        .await;
    assert_eq!(listed["endpoints"][0]["id"], listener.endpoint_id.as_str());
    drop(listener);

    // `--org` names another organisation: the server refuses, and the listener says so.
    let stderr = refused(&server, &["--key", ACME, "--org", "demo"]);
    assert!(
        stderr.contains("404") && stderr.contains("--org"),
        "{stderr}"
    );
}

#[test]
fn refuses_a_wrong_key_with_a_message_and_no_endpoint() {
    let server = Server::builder().key("demo", "admin", ADMIN).start();
    let stderr = refused(&server, &["--key", "avk_not_a_key"]);
    assert!(
        stderr.contains("401") && stderr.contains("--key"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("avk_not_a_key"),
        "the key is not echoed: {stderr}"
    );
}

/// Runs a listener that must fail to start; what it said on stderr.
fn refused(server: &Server, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_webhooks-local"))
        .args([
            "listen",
            "--events",
            "alert.fired",
            "--server",
            server.base(),
        ])
        .args(args)
        .env("XDG_CACHE_HOME", support::cache_dir())
        .output()
        .expect("run the listener");
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The development CA is a root only: its name constraints hold, and the CA certificate
/// itself, served as a server's own by whoever holds its key, is refused (it is never
/// pinned the way a `--root-cert` self-signed certificate is).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_development_ca_itself_is_no_server_certificate() {
    use testkit::{HttpsReceiver, Reply, TestCa};
    let server = server();
    // The server made the CA at start; serve its own certificate and key.
    let dir = support::cache_dir().join("agentvista-webhooks/dev-ca-v1");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("the development CA");
    let impostor = TestCa::from_pem(&read("ca-cert.pem"), &read("ca-key.pem"));
    let receiver = HttpsReceiver::start_with_ca(&impostor, Reply::ok()).await;
    let created = server.create_endpoint("demo", &receiver.url("/hook")).await;
    publish(&server, "evt_impostor").await;
    let id = created["id"].as_str().expect("id");
    let mut attempt = Value::Null;
    for _ in 0..50 {
        let (_, listed) = server
            .get(&format!("/org/demo/webhooks/endpoints/{id}/deliveries"))
            .await;
        if let Some(delivery) = listed["deliveries"][0]["id"].as_str() {
            let (_, detail) = server
                .get(&format!("/org/demo/webhooks/deliveries/{delivery}"))
                .await;
            if !detail["attempts"][0].is_null() {
                attempt = detail["attempts"][0].clone();
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(attempt["error"]["kind"], "tls", "{attempt}");
    assert!(receiver.requests().is_empty(), "nothing was sent to it");
}
