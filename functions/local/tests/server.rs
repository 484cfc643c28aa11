//! The local server contract (SPEC.md): the real binary, its flags, its first line,
//! its routes over HTTP and a clean exit on SIGTERM. Every answer read here must be one
//! docs/openapi.yaml describes.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};
use testkit::openapi::Contract;

/// docs/openapi.yaml, as the server serves it.
static CONTRACT: LazyLock<Contract> = LazyLock::new(|| {
    Contract::from_json(shared::api::openapi::OPENAPI_JSON)
        .expect("the served OpenAPI document is a usable contract")
});

struct Answer {
    status: u16,
    json: Value,
}

/// Send a request and read the answer, which must be one docs/openapi.yaml describes
/// (status, content type, body schema, error code).
async fn exchange(request: reqwest::RequestBuilder) -> Answer {
    let (client, request) = request.build_split();
    let request = request.expect("a well-formed request");
    let method = request.method().to_string();
    let path = request.url().path().to_owned();
    let response = client.execute(request).await.expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("the whole body");
    if let Err(violation) = CONTRACT.check(&method, &path, status, &headers, &body) {
        panic!("an answer docs/openapi.yaml does not describe: {violation}");
    }
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).expect("every answer with a body is JSON")
    };
    Answer { status, json }
}

struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    base: String,
}

impl Server {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_webhooks-local"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .env_remove("ALLOWED_TARGET_CIDRS")
            .env_remove("EXTRA_ROOT_CERTS")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn webhooks-local");
        // A server that misbehaves must fail the test, not hang it: kill it after a minute,
        // which ends any read below with EOF.
        let pid = child.id().to_string();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(60));
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        stdout.read_line(&mut first).expect("first line");
        let base = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                panic!("first line must be `listening on http://ADDR`, got {first:?}")
            })
            .to_owned();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        Self {
            child,
            stdout,
            base,
        }
    }

    fn next_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("line");
        line
    }

    /// SIGTERM, then the exit status and whatever else it printed (the server must stop
    /// by itself, promptly).
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                let mut rest = String::new();
                self.stdout.read_to_string(&mut rest).expect("stdout");
                return (status, rest);
            }
            assert!(
                Instant::now() < deadline,
                "did not exit within 10 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[tokio::test]
async fn serves_the_endpoint_routes_with_given_keys_and_stops_on_sigterm() {
    let mut server = Server::start(
        &[
            "--key",
            "acme:admin:avk_local_test_admin",
            "--key",
            "acme:member:avk_local_test_member",
        ],
        &[],
    );
    let rest: Vec<String> = (0..2).map(|_| server.next_line()).collect();
    assert!(rest[0].contains("in memory"), "{rest:?}");
    assert!(
        rest[1].contains("127.0.0.0/8") && rest[1].contains("::1/128"),
        "{rest:?}"
    );

    let http = reqwest::Client::new();
    let url = format!("{}/org/acme/webhooks/endpoints", server.base);
    let created = exchange(http.post(&url).bearer_auth("avk_local_test_admin").json(
        &serde_json::json!({"url": "https://example.com/hook", "event_types": ["alert.fired"]}),
    ))
    .await;
    assert_eq!(created.status, 201, "{}", created.json);
    let created = created.json;
    assert!(
        created["secret"]
            .as_str()
            .expect("secret")
            .starts_with("whsec_")
    );

    let listed = exchange(http.get(&url).bearer_auth("avk_local_test_member")).await;
    assert_eq!(listed.status, 200, "{}", listed.json);
    assert_eq!(listed.json["endpoints"][0]["id"], created["id"]);

    let denied = exchange(
        http.post(&url)
            .bearer_auth("avk_local_test_member")
            .body("{}"),
    )
    .await;
    assert_eq!(denied.status, 403);

    // The OpenAPI document needs no key; unknown paths and methods answer in JSON too.
    let document = exchange(http.get(format!("{}/openapi.json", server.base))).await;
    assert_eq!(document.status, 200);
    assert_eq!(&document.json, CONTRACT.document());
    let unknown = exchange(http.get(format!("{}/org/acme/webhooks/nothing", server.base))).await;
    assert_eq!(unknown.status, 404);
    let wrong_method = exchange(http.put(&url).bearer_auth("avk_local_test_admin")).await;
    assert_eq!(wrong_method.status, 405);

    let (status, rest_of_stdout) = server.terminate();
    assert!(status.success(), "{status}");
    assert!(
        !rest_of_stdout.contains("admin key"),
        "no demo key when --key is given"
    );
}

#[tokio::test]
async fn without_keys_it_mints_a_demo_admin_key() {
    let mut server = Server::start(&["--allow-target", "none"], &[]);
    let rest: Vec<String> = (0..3).map(|_| server.next_line()).collect();
    assert!(rest[1].contains("none"), "{rest:?}");
    let key = rest[2]
        .trim()
        .strip_prefix("org demo, admin key: ")
        .unwrap_or_else(|| panic!("demo key line, got {rest:?}"))
        .to_owned();
    let answer = exchange(
        reqwest::Client::new()
            .get(format!("{}/org/demo/webhooks/endpoints", server.base))
            .bearer_auth(&key),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert!(server.terminate().0.success());
}

/// The in-process sender, with real delays from `RETRY_SCHEDULE`: a receiver that fails
/// once gets the retry a second later, and the history shows both attempts.
#[tokio::test]
async fn delivers_and_retries_in_process() {
    use testkit::{Behaviour, HttpsReceiver, Reply};
    let receiver =
        HttpsReceiver::start(Behaviour::sequence([Reply::status(500)], Reply::ok())).await;
    let dir = std::env::temp_dir().join(format!("avw-local-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let ca = receiver.write_ca_pem(&dir);
    let ca = ca.to_str().expect("utf-8 path");
    let server = Server::start(
        &[
            "--key",
            "acme:admin:avk_local_test_admin",
            "--root-cert",
            ca,
        ],
        &[
            ("RETRY_SCHEDULE", "1,1"),
            ("CIRCUIT_BREAKER_THRESHOLD", "5"),
        ],
    );
    let http = reqwest::Client::new();
    let api = format!("{}/org/acme/webhooks", server.base);
    let created = exchange(
        http.post(format!("{api}/endpoints"))
            .bearer_auth("avk_local_test_admin")
            .json(
                &serde_json::json!({"url": receiver.url("/hook"), "event_types": ["alert.fired"]}),
            ),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.json);
    let created = created.json;
    let published = exchange(
        http.post(format!("{api}/events"))
            .bearer_auth("avk_local_test_admin")
            .json(&serde_json::json!({"type": "alert.fired", "data": {"x": 1}})),
    )
    .await;
    assert_eq!(published.status, 202, "{}", published.json);

    let got = receiver.wait_for(2, Duration::from_secs(15)).await;
    assert!(
        got[1].received_at - got[0].received_at >= Duration::from_millis(700),
        "the retry waited"
    );
    let endpoint_id = created["id"].as_str().expect("id");
    let mut listed = Value::Null;
    for _ in 0..50 {
        listed = exchange(
            http.get(format!("{api}/endpoints/{endpoint_id}/deliveries"))
                .bearer_auth("avk_local_test_admin"),
        )
        .await
        .json;
        if listed["deliveries"][0]["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["deliveries"][0]["status"], "succeeded", "{listed}");
    assert_eq!(listed["deliveries"][0]["attempt_count"], 2);
    // The detail shows both attempts (checked against the document like every answer).
    let delivery_id = listed["deliveries"][0]["id"].as_str().expect("id");
    let detail = exchange(
        http.get(format!("{api}/deliveries/{delivery_id}"))
            .bearer_auth("avk_local_test_admin"),
    )
    .await;
    assert_eq!(detail.status, 200, "{}", detail.json);
    let attempts = detail.json["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2, "{}", detail.json);
    assert_eq!(attempts[0]["error"]["kind"], "http_status");
    assert_eq!(attempts[1]["error"], Value::Null);
    assert!(server.terminate().0.success());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_malformed_setting_stops_start_up_naming_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_webhooks-local"))
        .args(["--listen", "127.0.0.1:0"])
        .env("ALLOWED_TARGET_CIDRS", "127.0.0.0/8,not-a-range")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ALLOWED_TARGET_CIDRS") && stderr.contains("not-a-range"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing is announced before settings are valid"
    );
}
