//! The local server contract (README, "Local server"): the real binary, its flags, its first line,
//! its routes over HTTP and a clean exit on SIGTERM. Every answer read here must be one
//! docs/openapi.yaml describes (`support::Server` checks each).

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;
use support::{CONTRACT, Server, ServerBuilder};

const ADMIN: &str = "avk_local_test_admin";
const MEMBER: &str = "avk_local_test_member";

/// Starts the server (killed after a minute at the latest, so a misbehaving one fails the
/// test instead of hanging it), which must announce the loopback address it listens on.
fn start(builder: ServerBuilder) -> Server {
    let server = builder.kill_after(Duration::from_secs(60)).start();
    assert!(
        server.base().starts_with("http://127.0.0.1:"),
        "{}",
        server.base()
    );
    server
}

#[tokio::test]
async fn serves_the_endpoint_routes_with_given_keys_and_stops_on_sigterm() {
    // The admin key, given first, is the one `post` and `request` send.
    let mut server = start(
        Server::builder()
            .key("acme", "admin", ADMIN)
            .key("acme", "member", MEMBER),
    );
    let rest: Vec<String> = (0..2).map(|_| server.next_line()).collect();
    assert!(rest[0].contains("in memory"), "{rest:?}");
    assert!(
        rest[1].contains("127.0.0.0/8") && rest[1].contains("::1/128"),
        "{rest:?}"
    );

    let path = "/org/acme/webhooks/endpoints";
    let (status, created) = server
        .post(
            path,
            &json!({"url": "https://example.com/hook", "event_types": ["alert.fired"]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(
        created["secret"]
            .as_str()
            .expect("secret")
            .starts_with("whsec_")
    );

    let (status, listed) = server
        .request_as(Some(MEMBER), Method::GET, path, None)
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["endpoints"][0]["id"], created["id"]);

    let (status, _) = server
        .send(
            server
                .http()
                .post(server.url(path))
                .bearer_auth(MEMBER)
                .body("{}"),
        )
        .await;
    assert_eq!(status, 403);

    // The OpenAPI document needs no key; unknown paths and methods answer in JSON too.
    let (status, document) = server
        .request_as(None, Method::GET, "/openapi.json", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(&document, CONTRACT.document());
    let (status, _) = server
        .request_as(None, Method::GET, "/org/acme/webhooks/nothing", None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = server.request(Method::PUT, path, None).await;
    assert_eq!(status, 405);

    let (status, rest_of_stdout) = server.terminate();
    assert!(status.success(), "{status}");
    assert!(
        !rest_of_stdout.contains("admin key"),
        "no demo key when --key is given"
    );
}

#[tokio::test]
async fn without_keys_it_mints_a_demo_admin_key() {
    let mut server = start(Server::builder().allow_target("none"));
    let rest: Vec<String> = (0..3).map(|_| server.next_line()).collect();
    assert!(rest[1].contains("none"), "{rest:?}");
    let key = rest[2]
        .trim()
        .strip_prefix("org demo, admin key: ")
        .unwrap_or_else(|| panic!("demo key line, got {rest:?}"))
        .to_owned();
    let (status, listed) = server
        .request_as(
            Some(&key),
            Method::GET,
            "/org/demo/webhooks/endpoints",
            None,
        )
        .await;
    assert_eq!(status, 200, "{listed}");
    assert!(server.terminate().0.success());
}

/// A portal session, of either role, cannot make another (403 `forbidden`); the admin
/// key that made it can. The short `--key` (development) is taken.
#[tokio::test]
async fn a_portal_session_cannot_make_a_portal_session() {
    let server = start(Server::builder().key("acme", "admin", ADMIN));
    let path = "/org/acme/webhooks/portal-sessions";
    let mut tokens = Vec::new();
    for role in ["admin", "member"] {
        let (status, created) = server.post(path, &json!({"role": role})).await;
        assert_eq!(status, 201, "{created}");
        tokens.push(created["token"].as_str().expect("token").to_owned());
    }
    for token in &tokens {
        let (status, listed) = server
            .request_as(
                Some(token),
                Method::GET,
                "/org/acme/webhooks/endpoints",
                None,
            )
            .await;
        assert_eq!(status, 200, "a session works: {listed}");
        for role in ["admin", "member"] {
            let (status, refused) = server
                .request_as(
                    Some(token),
                    Method::POST,
                    path,
                    Some(&json!({"role": role, "ttl_seconds": 86_400})),
                )
                .await;
            assert_eq!(status, 403, "{refused}");
            assert_eq!(refused["error"]["code"], "forbidden", "{refused}");
        }
    }
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
    let server = start(
        Server::builder()
            .key("acme", "admin", ADMIN)
            .root_cert(&ca)
            .env("RETRY_SCHEDULE", "1,1")
            .env("CIRCUIT_BREAKER_THRESHOLD", "5"),
    );
    let api = "/org/acme/webhooks";
    let created = server.create_endpoint("acme", &receiver.url("/hook")).await;
    server
        .publish("acme", &json!({"type": "alert.fired", "data": {"x": 1}}))
        .await;

    let got = receiver.wait_for(2, Duration::from_secs(15)).await;
    assert!(
        got[1].received_at - got[0].received_at >= Duration::from_millis(700),
        "the retry waited"
    );
    let endpoint_id = created["id"].as_str().expect("id");
    let mut listed = Value::Null;
    for _ in 0..50 {
        listed = server
            .get(&format!("{api}/endpoints/{endpoint_id}/deliveries"))
            .await
            .1;
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
    let (status, detail) = server.get(&format!("{api}/deliveries/{delivery_id}")).await;
    assert_eq!(status, 200, "{detail}");
    let attempts = detail["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2, "{detail}");
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
