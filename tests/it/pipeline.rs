//! The delivery pipeline end to end: API → store → queue → sender → a real HTTPS
//! receiver (certificate made in the test) → recorded attempts, on both backends.

use crate::common::*;
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use shared::adapters::http_client::{OutboundClient, OutboundConfig};
use shared::adapters::memory_queue::MemoryQueue;
use shared::domain::{Attempt, AttemptOutcome, DeliveryStatus, Job, Lease, RetryPolicy, now};
use shared::pipeline::sweep::sweep;
use shared::pipeline::{Handled, Sender, SenderSettings};
use shared::ports::{ClaimFor, DeliveryStore, JobQueue, QueueError, StoreError};
use shared::wiring::{self, Services, Store};
use std::sync::Arc;
use std::time::Duration;
use testkit::{Behaviour, HttpsReceiver, Reply};
use tokio::sync::mpsc::UnboundedReceiver;
use uuid::Uuid;

pub struct Harness<S: Store> {
    pub store: Arc<S>,
    pub router: axum::Router,
    pub jobs: UnboundedReceiver<Job>,
    pub queue: Arc<MemoryQueue>,
    pub sender: Sender,
    pub receiver: HttpsReceiver,
    _certs: tempdir::Dir,
}

/// A scratch directory for the receiver's CA file, removed on drop.
pub mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            let p = std::env::temp_dir().join(format!("avw-it-{}", uuid::Uuid::now_v7()));
            std::fs::create_dir_all(&p).expect("temp dir");
            Self(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub struct Options {
    pub retry: Vec<u64>,
    pub threshold: u32,
    pub lease: Duration,
    pub allow_loopback: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            retry: vec![1, 1, 1],
            threshold: 20,
            lease: Duration::from_secs(30),
            allow_loopback: true,
        }
    }
}

/// The real SSRF-guarded client, trusting the receiver's CA; loopback allowed or not.
pub fn outbound_client(ca: std::path::PathBuf, allow_loopback: bool) -> OutboundClient {
    let allowed = if allow_loopback {
        vec![
            "127.0.0.0/8".parse().expect("cidr"),
            "::1/128".parse().expect("cidr"),
        ]
    } else {
        Vec::new()
    };
    OutboundClient::new(OutboundConfig {
        allowed,
        extra_root_certs: vec![ca],
        total_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        user_agent: wiring::user_agent(),
    })
    .expect("client")
}

pub fn settings(options: &Options) -> SenderSettings {
    SenderSettings {
        retry: RetryPolicy {
            delays: options
                .retry
                .iter()
                .copied()
                .map(Duration::from_secs)
                .collect(),
            jitter: 0.0,
        },
        breaker_threshold: options.threshold,
        lease: options.lease,
        user_agent: wiring::user_agent(),
    }
}

impl<S: Store> Harness<S> {
    pub async fn start(store: Arc<S>, behaviour: Behaviour, options: Options) -> Self {
        seed_keys(store.as_ref()).await;
        let receiver = HttpsReceiver::start(behaviour).await;
        let certs = tempdir::Dir::new();
        let ca = receiver.write_ca_pem(&certs.0);
        let (queue, jobs) = MemoryQueue::new();
        let queue = Arc::new(queue);
        let router = Services::new(store.clone(), queue.clone()).router();
        let sender = wiring::sender(
            store.clone(),
            queue.clone(),
            Arc::new(outbound_client(ca, options.allow_loopback)),
            settings(&options),
        );
        Self {
            store,
            router,
            jobs,
            queue,
            sender,
            receiver,
            _certs: certs,
        }
    }

    /// Create an endpoint on the receiver through the API; returns (id, secret).
    pub async fn endpoint(&self, types: &[&str]) -> (String, String) {
        let body = json!({"url": self.receiver.url("/hook"), "event_types": types}).to_string();
        let a = send(&self.router, "endpoints-create.json", |e| {
            set_body(e, &body)
        })
        .await;
        assert_eq!(a.status, 201, "{}", a.json);
        (
            a.json["id"].as_str().expect("id").to_owned(),
            a.json["secret"].as_str().expect("secret").to_owned(),
        )
    }

    pub async fn publish(&self, id: &str) -> Value {
        let body =
            json!({"id": id, "type": "alert.fired", "data": {"n": 1, "text": "héllo"}}).to_string();
        let a = send(&self.router, "events-publish.json", |e| set_body(e, &body)).await;
        assert_eq!(a.status, 202, "{}", a.json);
        a.json
    }

    /// The next job that comes due, within `wait`.
    pub async fn next_job(&mut self, wait: Duration) -> Option<Job> {
        tokio::time::timeout(wait, self.jobs.recv())
            .await
            .ok()
            .flatten()
    }

    /// Handle the next due job.
    pub async fn step(&mut self, wait: Duration) -> Handled {
        let job = self.next_job(wait).await.expect("a job comes due");
        self.sender.handle(job).await.expect("handled")
    }

    /// The endpoint as stored now.
    pub async fn stored_endpoint(&self, id: &str) -> shared::domain::Endpoint {
        self.store
            .get_endpoint("acme", id.parse().expect("uuid"))
            .await
            .expect("get")
            .expect("the endpoint exists")
    }

    pub async fn detail(&self, delivery_id: &str) -> Value {
        let path = format!("/org/acme/webhooks/deliveries/{delivery_id}");
        let a = send(&self.router, "deliveries-get.json", |e| set_path(e, &path)).await;
        assert_eq!(a.status, 200, "{}", a.json);
        a.json
    }

    pub async fn deliveries_of(&self, endpoint_id: &str) -> Value {
        let path = format!("/org/acme/webhooks/endpoints/{endpoint_id}/deliveries");
        let a = send(&self.router, "deliveries-list.json", |e| {
            set_path(e, &path);
            e["rawQueryString"] = "".into();
        })
        .await;
        assert_eq!(a.status, 200, "{}", a.json);
        a.json
    }
}

/// `X-AgentVista-Signature`, checked with code independent of `shared::signing`.
fn agentvista_valid(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x),
            Some(("v1", x)) => v1 = Some(x),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    hex::decode(v1).is_ok_and(|sig| mac.verify_slice(&sig).is_ok())
}

/// Standard Webhooks `webhook-signature`, checked independently.
fn standard_valid(secret: &str, id: &str, ts: &str, body: &[u8], header: &str) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("prefix"))
        .expect("base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    header.split(' ').any(|s| s == expected)
}

/// Run a receiver-side Python script from `docs/receiving/` on a captured delivery.
fn python_accepts(python: &str, script: &str, input: &Value) -> bool {
    use std::io::Write;
    let script = events_dir().join("../docs/receiving").join(script);
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write");
    child.wait().expect("wait").success()
}

/// The receiver guide's Python snippet (standard library only).
fn python_snippet_accepts(secret: &str, signature: &str, body: &str) -> bool {
    let input =
        json!({"secret": secret, "headers": {"x-agentvista-signature": signature}, "body": body});
    python_accepts("python3", "verify_agentvista.py", &input)
}

/// The `standardwebhooks` library from PyPI, as-is, on the `webhook-*` headers.
fn standardwebhooks_accepts(secret: &str, request: &testkit::RecordedRequest, body: &str) -> bool {
    let python = std::env::var("AVW_STANDARDWEBHOOKS_PYTHON")
        .expect("AVW_STANDARDWEBHOOKS_PYTHON: run the tests with scripts/test.sh");
    let input = json!({"secret": secret, "headers": request.headers, "body": body});
    python_accepts(&python, "verify_standardwebhooks.py", &input)
}

const STEP: Duration = Duration::from_secs(10);

async fn delivers_signed_and_records_once(store: Arc<impl Store>) {
    let mut h = Harness::start(
        store,
        Behaviour::always(Reply::ok().body("thanks")),
        Options::default(),
    )
    .await;
    let (endpoint_id, secret) = h.endpoint(&["alert.fired"]).await;
    let (_, not_subscribed) = h.endpoint(&["other.type"]).await;
    let published = h.publish("evt_e2e_1").await;
    assert_eq!(published["deliveries"], 1);
    assert_eq!(published["event_id"], "evt_e2e_1");

    let job = h.next_job(STEP).await.expect("job");
    assert!(matches!(
        h.sender.handle(job.clone()).await,
        Ok(Handled::Attempted {
            status: DeliveryStatus::Succeeded,
            attempt: 1
        })
    ));
    // The same message again (SQS is at-least-once): no second POST, no second attempt.
    assert_eq!(h.sender.handle(job).await.expect("dup"), Handled::Skipped);

    let got = h.receiver.requests();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/hook");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(
        r.header("user-agent")
            .expect("ua")
            .starts_with("AgentVista-Webhooks/")
    );
    assert_eq!(r.header("x-agentvista-event"), Some("alert.fired"));
    let delivery_id = r
        .header("x-agentvista-delivery")
        .expect("delivery id")
        .to_owned();
    assert_eq!(r.header("webhook-id"), Some(delivery_id.as_str()));
    let signature = r.header("x-agentvista-signature").expect("signature");
    assert!(agentvista_valid(&secret, signature, &r.body));
    assert!(
        !agentvista_valid(&not_subscribed, signature, &r.body),
        "another secret fails"
    );
    let ts = r.header("webhook-timestamp").expect("ts");
    assert!(signature.starts_with(&format!("t={ts},")));
    assert!(standard_valid(
        &secret,
        &delivery_id,
        ts,
        &r.body,
        r.header("webhook-signature").expect("sig")
    ));
    assert!(python_snippet_accepts(&secret, signature, &r.body_text()));
    assert!(standardwebhooks_accepts(&secret, r, &r.body_text()));
    assert!(!standardwebhooks_accepts(
        &not_subscribed,
        r,
        &r.body_text()
    ));
    assert!(!python_snippet_accepts(
        &secret,
        signature,
        &r.body_text().replace("héllo", "hello")
    ));

    let envelope: Value = serde_json::from_slice(&r.body).expect("JSON body");
    assert_eq!(envelope["id"], "evt_e2e_1");
    assert_eq!(envelope["type"], "alert.fired");
    assert_eq!(envelope["org"], "acme");
    assert_eq!(envelope["data"], json!({"n": 1, "text": "héllo"}));
    assert!(
        envelope["created_at"]
            .as_str()
            .expect("created_at")
            .ends_with('Z')
    );

    let detail = h.detail(&delivery_id).await;
    assert_eq!(detail["status"], "succeeded");
    assert_eq!(detail["attempt_count"], 1);
    assert_eq!(detail["last_status_code"], 200);
    assert_eq!(detail["next_attempt_at"], Value::Null);
    assert_eq!(detail["payload"], envelope, "the exact body sent");
    assert_eq!(detail["endpoint_id"], endpoint_id.as_str());
    let attempts = detail["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["trigger"], "automatic");
    assert_eq!(attempts[0]["succeeded"], true);
    assert_eq!(attempts[0]["response_body"], "thanks");
    assert_eq!(attempts[0]["error"], Value::Null);
    assert!(
        !detail.to_string().contains("whsec_"),
        "no secret in delivery detail"
    );

    let listed = h.deliveries_of(&endpoint_id).await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["deliveries"][0]["id"], delivery_id.as_str());
    assert!(listed["deliveries"][0].get("payload").is_none());

    // A repeated event id creates nothing and answers the first result.
    let again = h.publish("evt_e2e_1").await;
    assert_eq!(again, published);
    assert!(h.next_job(Duration::from_millis(300)).await.is_none());
}

async fn retries_on_schedule_then_succeeds(store: Arc<impl Store>) {
    let behaviour = Behaviour::sequence(
        [
            Reply::status(500).body("boom"),
            Reply::status(503).header("Retry-After", "1"),
        ],
        Reply::ok(),
    );
    let mut h = Harness::start(store, behaviour, Options::default()).await;
    let (endpoint_id, _) = h.endpoint(&["alert.fired"]).await;
    h.publish("evt_retry").await;

    assert_eq!(
        h.step(STEP).await,
        Handled::Attempted {
            status: DeliveryStatus::Retrying,
            attempt: 1
        }
    );
    let id = h.receiver.requests()[0]
        .header("webhook-id")
        .expect("id")
        .to_owned();
    let d = h.detail(&id).await;
    assert_eq!(d["status"], "retrying");
    assert_eq!(d["last_status_code"], 500);
    assert!(d["next_attempt_at"].is_string());
    assert_eq!(d["attempts"][0]["error"]["kind"], "http_status");
    assert_eq!(d["attempts"][0]["response_body"], "boom");
    let ep = h.stored_endpoint(&endpoint_id).await;
    assert_eq!(ep.consecutive_failures, 1);

    assert_eq!(
        h.step(STEP).await,
        Handled::Attempted {
            status: DeliveryStatus::Retrying,
            attempt: 2
        }
    );
    assert_eq!(
        h.step(STEP).await,
        Handled::Attempted {
            status: DeliveryStatus::Succeeded,
            attempt: 3
        }
    );

    let got = h.receiver.requests();
    assert_eq!(got.len(), 3);
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "the same bytes on every attempt"
    );
    assert!(
        got.iter()
            .all(|r| r.header("webhook-id") == Some(id.as_str()))
    );
    let d = h.detail(&id).await;
    assert_eq!(d["status"], "succeeded");
    assert_eq!(d["attempts"].as_array().expect("attempts").len(), 3);
    // Each retry waited its scheduled second after the attempt before it ended (the
    // queue never hands a delayed job out early).
    let at = |i: usize| {
        let a = &d["attempts"][i];
        let start = chrono::DateTime::parse_from_rfc3339(a["started_at"].as_str().expect("ts"))
            .expect("rfc3339");
        (
            start,
            start + chrono::Duration::milliseconds(a["duration_ms"].as_i64().expect("ms")),
        )
    };
    for i in 1..3 {
        let gap = at(i).0 - at(i - 1).1;
        assert!(
            gap >= chrono::Duration::milliseconds(950),
            "attempt {i} came {gap} after the last"
        );
    }

    let ep = h.stored_endpoint(&endpoint_id).await;
    assert_eq!(ep.consecutive_failures, 0, "a success clears the count");
}

async fn exhausted_retries_fail(store: Arc<impl Store>) {
    let options = Options {
        retry: vec![1],
        ..Options::default()
    };
    let mut h = Harness::start(store, Behaviour::always(Reply::status(500)), options).await;
    h.endpoint(&["alert.fired"]).await;
    h.publish("evt_fail").await;
    assert_eq!(
        h.step(STEP).await,
        Handled::Attempted {
            status: DeliveryStatus::Retrying,
            attempt: 1
        }
    );
    assert_eq!(
        h.step(STEP).await,
        Handled::Attempted {
            status: DeliveryStatus::Failed,
            attempt: 2
        }
    );
    assert!(
        h.next_job(Duration::from_millis(1500)).await.is_none(),
        "nothing more is scheduled"
    );
}

async fn breaker_pauses_and_resume_requeues(store: Arc<impl Store>) {
    let options = Options {
        retry: vec![1, 1, 1, 1],
        threshold: 2,
        ..Options::default()
    };
    let mut h = Harness::start(store, Behaviour::always(Reply::status(500)), options).await;
    let (endpoint_id, _) = h.endpoint(&["alert.fired"]).await;
    h.publish("evt_breaker").await;
    assert_eq!(
        h.step(STEP).await,
        Handled::Attempted {
            status: DeliveryStatus::Retrying,
            attempt: 1
        }
    );
    assert_eq!(
        h.step(STEP).await,
        Handled::Attempted {
            status: DeliveryStatus::Retrying,
            attempt: 2
        }
    );
    let ep = h.stored_endpoint(&endpoint_id).await;
    assert!(!ep.is_active, "paused at the threshold");
    assert_eq!(ep.consecutive_failures, 2);
    // The scheduled third attempt finds the endpoint paused: nothing is sent.
    assert_eq!(h.step(STEP).await, Handled::Held);
    assert_eq!(h.receiver.requests().len(), 2);
    let id = h.receiver.requests()[0]
        .header("webhook-id")
        .expect("id")
        .to_owned();
    assert_eq!(h.detail(&id).await["status"], "paused");
    // Events published while paused wait too.
    h.publish("evt_while_paused").await;
    assert!(h.next_job(Duration::from_millis(300)).await.is_none());

    h.receiver.set_behaviour(Behaviour::always(Reply::ok()));
    let path = format!("/org/acme/webhooks/endpoints/{endpoint_id}");
    let resumed = send(&h.router, "endpoints-update.json", |e| {
        set_path(e, &path);
        set_body(e, r#"{"is_active": true}"#);
    })
    .await;
    assert_eq!(resumed.status, 200);
    assert_eq!(resumed.json["consecutive_failures"], 0);
    assert_eq!(
        h.step(STEP).await,
        Handled::Chunk {
            done: 2,
            more: false
        }
    );
    let mut statuses = Vec::new();
    for _ in 0..2 {
        statuses.push(h.step(STEP).await);
    }
    assert!(
        statuses.contains(&Handled::Attempted {
            status: DeliveryStatus::Succeeded,
            attempt: 3
        }),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&Handled::Attempted {
            status: DeliveryStatus::Succeeded,
            attempt: 1
        }),
        "{statuses:?}"
    );
}

async fn gone_pauses_at_once(store: Arc<impl Store>) {
    let mut h = Harness::start(
        store,
        Behaviour::always(Reply::status(410)),
        Options::default(),
    )
    .await;
    let (endpoint_id, _) = h.endpoint(&["alert.fired"]).await;
    h.publish("evt_gone").await;
    assert_eq!(
        h.step(STEP).await,
        Handled::Attempted {
            status: DeliveryStatus::Paused,
            attempt: 1
        }
    );
    let ep = h.stored_endpoint(&endpoint_id).await;
    assert!(!ep.is_active);
    assert!(h.next_job(Duration::from_millis(1500)).await.is_none());
}

async fn blocked_targets_are_never_reached(store: Arc<impl Store>) {
    let options = Options {
        allow_loopback: false,
        ..Options::default()
    };
    let mut h = Harness::start(store, Behaviour::always(Reply::ok()), options).await;
    // Both an IP literal and a name that resolves to loopback.
    h.endpoint(&["alert.fired"]).await;
    let body = json!({"url": h.receiver.localhost_url("/hook"), "event_types": ["alert.fired"]})
        .to_string();
    assert_eq!(
        send(&h.router, "endpoints-create.json", |e| set_body(e, &body))
            .await
            .status,
        201
    );
    h.publish("evt_blocked").await;
    for _ in 0..2 {
        assert_eq!(
            h.step(STEP).await,
            Handled::Attempted {
                status: DeliveryStatus::Retrying,
                attempt: 1
            }
        );
    }
    assert!(
        h.receiver.requests().is_empty(),
        "the receiver was never reached"
    );
    let ids = h
        .store
        .due_deliveries(now() + chrono::Duration::days(1), 10)
        .await
        .expect("due");
    for d in ids {
        let detail = h.detail(&d.id.to_string()).await;
        assert_eq!(
            detail["attempts"][0]["error"]["kind"], "blocked_address",
            "{detail}"
        );
        assert_eq!(detail["attempts"][0]["status_code"], Value::Null);
    }
}

async fn manual_retry_sends_again(store: Arc<impl Store>) {
    let mut h = Harness::start(store, Behaviour::always(Reply::ok()), Options::default()).await;
    h.endpoint(&["alert.fired"]).await;
    h.publish("evt_manual").await;
    h.step(STEP).await;
    let id = h.receiver.requests()[0]
        .header("webhook-id")
        .expect("id")
        .to_owned();
    let path = format!("/org/acme/webhooks/deliveries/{id}/retry");
    let a = send(&h.router, "deliveries-retry.json", |e| set_path(e, &path)).await;
    assert_eq!(a.status, 202);
    assert_eq!(a.json, json!({"queued": true, "delivery_id": id}));
    let job = h.next_job(STEP).await.expect("manual job");
    assert_eq!(
        h.sender.handle(job.clone()).await.expect("handled"),
        Handled::Attempted {
            status: DeliveryStatus::Succeeded,
            attempt: 2
        }
    );
    assert_eq!(
        h.sender.handle(job).await.expect("dup"),
        Handled::Skipped,
        "one request, one attempt"
    );
    let d = h.detail(&id).await;
    assert_eq!(d["attempts"][1]["trigger"], "manual");
    assert_eq!(h.receiver.requests().len(), 2);
}

/// A delivery store that fails where a test says, around the real one.
struct Faulty<S> {
    inner: Arc<S>,
    /// Fail the next `record_attempt`, as if the sender died after the POST.
    armed: std::sync::atomic::AtomicBool,
    /// Fail writing the delivery for this endpoint, as if a publish died half-way.
    fail_insert_for: Option<Uuid>,
}

#[async_trait]
impl<S: Store> DeliveryStore for Faulty<S> {
    async fn next_delivery_seq(&self, org: &str, e: Uuid) -> Result<Option<u64>, StoreError> {
        self.inner.next_delivery_seq(org, e).await
    }
    async fn insert_delivery(&self, d: &shared::domain::Delivery) -> Result<(), StoreError> {
        if self.fail_insert_for == Some(d.endpoint_id) {
            return Err(StoreError::Backend(
                "injected: the publish died half-way".into(),
            ));
        }
        self.inner.insert_delivery(d).await
    }
    async fn get_delivery(&self, id: Uuid) -> Result<Option<shared::domain::Delivery>, StoreError> {
        self.inner.get_delivery(id).await
    }
    async fn list_attempts(&self, id: Uuid) -> Result<Vec<Attempt>, StoreError> {
        self.inner.list_attempts(id).await
    }
    async fn delivery_page(
        &self,
        e: &shared::domain::Endpoint,
        p: u32,
        n: u32,
    ) -> Result<(Vec<shared::domain::Delivery>, u64), StoreError> {
        self.inner.delivery_page(e, p, n).await
    }
    async fn claim(
        &self,
        id: Uuid,
        c: ClaimFor,
        l: Lease,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<shared::domain::Delivery>, StoreError> {
        self.inner.claim(id, c, l, at).await
    }
    async fn record_attempt(
        &self,
        d: &shared::domain::Delivery,
        l: Uuid,
        a: &Attempt,
        o: &AttemptOutcome,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<shared::domain::Delivery>, StoreError> {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Backend(
                "injected: the sender died after the POST".into(),
            ));
        }
        self.inner.record_attempt(d, l, a, o, at).await
    }
    async fn hold(
        &self,
        d: &shared::domain::Delivery,
        l: Uuid,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        self.inner.hold(d, l, at).await
    }
    async fn request_retry(
        &self,
        id: Uuid,
        r: Uuid,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        self.inner.request_retry(id, r, at).await
    }
    async fn paused_deliveries(
        &self,
        e: Uuid,
        n: u32,
    ) -> Result<Vec<shared::domain::Delivery>, StoreError> {
        self.inner.paused_deliveries(e, n).await
    }
    async fn resume_delivery(
        &self,
        d: &shared::domain::Delivery,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        self.inner.resume_delivery(d, at).await
    }
    async fn endpoint_delivery_ids(&self, e: Uuid, n: u32) -> Result<Vec<Uuid>, StoreError> {
        self.inner.endpoint_delivery_ids(e, n).await
    }
    async fn delete_deliveries(&self, ids: &[Uuid]) -> Result<(), StoreError> {
        self.inner.delete_deliveries(ids).await
    }
    async fn due_deliveries(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        n: u32,
    ) -> Result<Vec<shared::domain::Delivery>, StoreError> {
        self.inner.due_deliveries(before, n).await
    }
    async fn touch_due(
        &self,
        id: Uuid,
        seen: chrono::DateTime<chrono::Utc>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        self.inner.touch_due(id, seen, at).await
    }
}

async fn a_sender_dying_after_the_post_loses_nothing(store: Arc<impl Store>) {
    let options = Options {
        lease: Duration::from_secs(1),
        ..Options::default()
    };
    let mut h = Harness::start(store.clone(), Behaviour::always(Reply::ok()), options).await;
    h.endpoint(&["alert.fired"]).await;
    h.publish("evt_crash").await;
    let dying = Arc::new(Faulty {
        fail_insert_for: None,
        inner: store.clone(),
        armed: true.into(),
    });
    h.sender.deliveries = dying.clone();
    let job = h.next_job(STEP).await.expect("job");
    assert!(
        h.sender.handle(job.clone()).await.is_err(),
        "the injected crash"
    );
    assert_eq!(h.receiver.requests().len(), 1, "the POST happened");
    // While the dead sender's claim lasts, a duplicate message does nothing.
    assert_eq!(h.sender.handle(job).await.expect("dup"), Handled::Skipped);

    // Once the claim has expired, the sweep finds the delivery overdue and re-queues it.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        sweep(store.as_ref(), h.queue.as_ref(), Duration::ZERO, 100)
            .await
            .expect("sweep"),
        1
    );
    assert_eq!(
        h.step(STEP).await,
        Handled::Attempted {
            status: DeliveryStatus::Succeeded,
            attempt: 1
        }
    );
    let got = h.receiver.requests();
    assert_eq!(got.len(), 2, "the try was repeated, not lost");
    assert_eq!(
        got[0].header("webhook-id"),
        got[1].header("webhook-id"),
        "receivers can de-duplicate"
    );
    let id: Uuid = got[0]
        .header("webhook-id")
        .expect("id")
        .parse()
        .expect("uuid");
    assert_eq!(
        store.list_attempts(id).await.expect("attempts").len(),
        1,
        "one attempt recorded for one try"
    );
    assert_eq!(
        sweep(store.as_ref(), h.queue.as_ref(), Duration::ZERO, 100)
            .await
            .expect("sweep"),
        0
    );
}

/// A queue that refuses every job.
struct BrokenQueue;

#[async_trait]
impl JobQueue for BrokenQueue {
    async fn enqueue(&self, _: Vec<(Job, Duration)>) -> Result<(), QueueError> {
        Err(QueueError("injected: queue unavailable".into()))
    }
}

async fn an_enqueue_failure_after_publish_is_recovered(store: Arc<impl Store>) {
    let mut h = Harness::start(
        store.clone(),
        Behaviour::always(Reply::ok()),
        Options::default(),
    )
    .await;
    h.endpoint(&["alert.fired"]).await;
    let broken = Services::new(store.clone(), Arc::new(BrokenQueue)).router();
    let body = json!({"id": "evt_lost_enqueue", "type": "alert.fired", "data": {}}).to_string();
    let a = send(&broken, "events-publish.json", |e| set_body(e, &body)).await;
    assert_eq!(a.status, 202, "stored, so accepted: {}", a.json);
    assert!(
        h.next_job(Duration::from_millis(300)).await.is_none(),
        "nothing was enqueued"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        sweep(
            store.as_ref(),
            h.queue.as_ref(),
            Duration::from_millis(10),
            100
        )
        .await
        .expect("sweep"),
        1
    );
    assert_eq!(
        h.step(STEP).await,
        Handled::Attempted {
            status: DeliveryStatus::Succeeded,
            attempt: 1
        }
    );
    assert_eq!(h.receiver.requests().len(), 1);
}

async fn long_waits_hop(store: Arc<impl Store>) {
    let mut h = Harness::start(store, Behaviour::always(Reply::ok()), Options::default()).await;
    let id = Uuid::now_v7();
    let at = now() + chrono::Duration::hours(10);
    let job = Job::automatic(id, 2, Some(at));
    assert_eq!(
        h.sender.handle(job.clone()).await.expect("hop"),
        Handled::Hopped
    );
    assert!(
        h.next_job(Duration::from_millis(200)).await.is_none(),
        "sent on with a delay"
    );
}

/// Thousands of deliveries (some with attempts) go with their endpoint, in bounded
/// chunks, each a job of its own: no single invocation grows with the history.
async fn deleting_an_endpoint_purges_its_whole_history(store: Arc<impl Store>) {
    const N: usize = 1_500;
    let mut h = Harness::start(
        store.clone(),
        Behaviour::always(Reply::ok()),
        Options::default(),
    )
    .await;
    let (endpoint_id, _) = h.endpoint(&["alert.fired"]).await;
    let endpoint_uuid: Uuid = endpoint_id.parse().expect("uuid");
    let event = shared::domain::Event {
        org: "acme".into(),
        id: "evt_bulk".into(),
        event_type: "alert.fired".into(),
        created_at: now(),
        payload: "{}".into(),
        targets: vec![],
        fanned_out: true,
        fan_out_until: None,
    };
    // Concurrent writers to seed quickly; the attempts afterwards, one at a time (moto
    // answers 500 to transactions that overlap other writes).
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (store, event) = (store.clone(), event.clone());
            tokio::spawn(async move {
                let mut made = Vec::new();
                for _ in 0..N / 10 {
                    let seq = store
                        .next_delivery_seq("acme", endpoint_uuid)
                        .await
                        .expect("seq")
                        .expect("exists");
                    // One event per delivery: a delivery's id derives from event and endpoint.
                    let event = shared::domain::Event {
                        id: format!("evt_bulk_{seq}"),
                        ..event.clone()
                    };
                    let d = shared::domain::Delivery::new(&event, endpoint_uuid, seq, true);
                    store.insert_delivery(&d).await.expect("insert");
                    made.push(d);
                }
                made
            })
        })
        .collect();
    let mut made = Vec::new();
    for t in tasks {
        made.extend(t.await.expect("task"));
    }
    let mut attempted = Vec::new();
    for d in made.iter().step_by(50) {
        let lease = Lease {
            id: Uuid::now_v7(),
            until: now() + chrono::Duration::minutes(1),
        };
        let claimed = store
            .claim(d.id, ClaimFor::Attempt(1), lease, now())
            .await
            .expect("claim")
            .expect("claimed");
        let (attempt, outcome) = succeeded_attempt(1);
        assert!(
            store
                .record_attempt(&claimed, lease.id, &attempt, &outcome, now())
                .await
                .expect("record")
                .is_some()
        );
        attempted.push(d.id);
    }
    assert_eq!(h.deliveries_of(&endpoint_id).await["total"], N);

    let path = format!("/org/acme/webhooks/endpoints/{endpoint_id}");
    assert_eq!(
        send(&h.router, "endpoints-delete.json", |e| set_path(e, &path))
            .await
            .status,
        204
    );
    // The history is gone for the API at once.
    let gone = send(&h.router, "deliveries-get.json", |e| {
        set_path(
            e,
            &format!("/org/acme/webhooks/deliveries/{}", attempted[0]),
        )
    })
    .await;
    assert_error(&gone, 404, "not_found");

    let mut chunks = 0;
    while let Some(job) = h.next_job(Duration::from_millis(500)).await {
        match h.sender.handle(job).await.expect("purge chunk") {
            Handled::Chunk { done, .. } => {
                assert!(done <= shared::pipeline::sender::CHUNK as usize);
                chunks += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        chunks >= N / shared::pipeline::sender::CHUNK as usize,
        "{chunks} chunks"
    );
    assert!(
        store
            .endpoint_delivery_ids(endpoint_uuid, 10)
            .await
            .expect("ids")
            .is_empty()
    );
    for id in attempted {
        assert!(store.get_delivery(id).await.expect("get").is_none());
        assert!(store.list_attempts(id).await.expect("attempts").is_empty());
    }
}

/// A publish that died after some deliveries were written is finished by a repeat with
/// the same id: every target ends with exactly one delivery.
async fn a_half_done_publish_is_finished_by_its_repeat(store: Arc<impl Store>) {
    let mut h = Harness::start(
        store.clone(),
        Behaviour::always(Reply::ok()),
        Options::default(),
    )
    .await;
    let mut endpoints = Vec::new();
    for _ in 0..3 {
        endpoints.push(h.endpoint(&["alert.fired"]).await.0);
    }
    let broken_for: Uuid = endpoints[1].parse().expect("uuid");
    let publisher = shared::pipeline::Publisher {
        endpoints: store.clone(),
        deliveries: Arc::new(Faulty {
            inner: store.clone(),
            armed: false.into(),
            fail_insert_for: Some(broken_for),
        }),
        events: store.clone(),
        queue: h.queue.clone(),
    };
    let request = || shared::pipeline::PublishRequest {
        id: Some("evt_half".into()),
        event_type: "alert.fired".into(),
        // The content `Harness::publish` sends: the repeat is the same event.
        data: json!({"n": 1, "text": "héllo"}),
    };
    let failed = publisher
        .publish("acme", request(), shared::pipeline::Audience::Subscribers)
        .await;
    assert!(
        failed.is_err(),
        "the injected failure surfaces (a 500 to the client)"
    );
    let mut jobs = 0;
    while h.next_job(Duration::from_millis(200)).await.is_some() {
        jobs += 1;
    }
    assert_eq!(jobs, 0, "nothing was enqueued by the failed publish");

    let again = h.publish("evt_half").await;
    assert_eq!(again["deliveries"], 3);
    for id in &endpoints {
        assert_eq!(
            h.deliveries_of(id).await["total"],
            1,
            "one delivery for endpoint {id}"
        );
    }
    for _ in 0..3 {
        assert_eq!(
            h.step(STEP).await,
            Handled::Attempted {
                status: DeliveryStatus::Succeeded,
                attempt: 1
            }
        );
    }
    assert_eq!(h.receiver.requests().len(), 3);
    // And now it is complete, a third publish changes nothing.
    assert_eq!(h.publish("evt_half").await, again);
    assert!(h.next_job(Duration::from_millis(300)).await.is_none());
}

/// A manual retry that arrives while an automatic attempt holds the delivery waits for
/// it instead of being dropped.
async fn a_manual_retry_during_an_attempt_is_not_lost(store: Arc<impl Store>) {
    let mut h = Harness::start(
        store.clone(),
        Behaviour::always(Reply::ok()),
        Options::default(),
    )
    .await;
    h.endpoint(&["alert.fired"]).await;
    h.publish("evt_busy").await;
    let automatic = h.next_job(STEP).await.expect("automatic job");
    let Job::Deliver { delivery_id, .. } = automatic else {
        panic!("a delivery job");
    };
    // Another sender is mid-attempt: it holds the claim for two more seconds.
    let lease = Lease {
        id: Uuid::now_v7(),
        until: now() + chrono::Duration::seconds(2),
    };
    let claimed = store
        .claim(delivery_id, ClaimFor::Attempt(1), lease, now())
        .await
        .expect("claim")
        .expect("claimed");
    let path = format!("/org/acme/webhooks/deliveries/{delivery_id}/retry");
    assert_eq!(
        send(&h.router, "deliveries-retry.json", |e| set_path(e, &path))
            .await
            .status,
        202
    );
    let manual = h.next_job(STEP).await.expect("manual job");
    assert_eq!(
        h.sender.handle(manual).await.expect("handled"),
        Handled::Deferred
    );
    // The other sender finishes its attempt.
    let (attempt, outcome) = succeeded_attempt(1);
    assert!(
        store
            .record_attempt(&claimed, lease.id, &attempt, &outcome, now())
            .await
            .expect("record")
            .is_some()
    );
    // The deferred manual retry comes back after the claim and makes its attempt.
    assert_eq!(
        h.step(STEP).await,
        Handled::Attempted {
            status: DeliveryStatus::Succeeded,
            attempt: 2
        }
    );
    let detail = h.detail(&delivery_id.to_string()).await;
    assert_eq!(detail["attempts"][1]["trigger"], "manual");
}

/// A retry clicked while the sender's own attempt is in flight goes out as soon as that
/// attempt is recorded, not when the deferred job would come back (after the lease).
async fn a_retry_during_a_slow_attempt_goes_out_when_it_ends(store: Arc<impl Store>) {
    let first = std::sync::atomic::AtomicBool::new(true);
    let mut h = Harness::start(
        store,
        Behaviour::from_fn(move |_| {
            if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                Reply::ok().delay(Duration::from_millis(1500))
            } else {
                Reply::ok()
            }
        }),
        Options::default(),
    )
    .await;
    h.endpoint(&["alert.fired"]).await;
    h.publish("evt_slow").await;
    let automatic = h.next_job(STEP).await.expect("automatic job");
    let Job::Deliver { delivery_id, .. } = automatic else {
        panic!("a delivery job");
    };
    let path = format!("/org/acme/webhooks/deliveries/{delivery_id}/retry");
    let Harness {
        sender,
        jobs,
        router,
        ..
    } = &mut h;
    let (slow, deferred) = tokio::join!(sender.handle(automatic), async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let a = send(router, "deliveries-retry.json", |e| set_path(e, &path)).await;
        assert_eq!(a.status, 202, "{}", a.json);
        let manual = tokio::time::timeout(STEP, jobs.recv())
            .await
            .expect("the manual job")
            .expect("queue open");
        sender.handle(manual).await.expect("handled")
    });
    assert_eq!(
        deferred,
        Handled::Deferred,
        "the first attempt holds the claim"
    );
    assert_eq!(
        slow.expect("handled"),
        Handled::Attempted {
            status: DeliveryStatus::Succeeded,
            attempt: 1
        }
    );
    // The lease is 30 s: only the job enqueued on recording can arrive this soon.
    let manual = h
        .next_job(Duration::from_secs(3))
        .await
        .expect("the retry is sent on at once");
    assert_eq!(
        h.sender.handle(manual).await.expect("handled"),
        Handled::Attempted {
            status: DeliveryStatus::Succeeded,
            attempt: 2
        }
    );
    let detail = h.detail(&delivery_id.to_string()).await;
    assert_eq!(detail["attempts"][1]["trigger"], "manual");
    assert_eq!(h.receiver.requests().len(), 2);
}

/// A retry of a succeeded delivery while its endpoint is paused keeps the delivery
/// `succeeded` until it happens, and is sent as a manual attempt after the resume.
async fn a_retry_held_by_a_paused_endpoint_stays_manual(store: Arc<impl Store>) {
    let mut h = Harness::start(store, Behaviour::always(Reply::ok()), Options::default()).await;
    let (endpoint_id, _) = h.endpoint(&["alert.fired"]).await;
    h.publish("evt_held").await;
    h.step(STEP).await;
    let id = h.receiver.requests()[0]
        .header("webhook-id")
        .expect("id")
        .to_owned();
    let patch = |active: bool| {
        let path = format!("/org/acme/webhooks/endpoints/{endpoint_id}");
        move |e: &mut Value| {
            set_path(e, &path);
            set_body(e, &json!({ "is_active": active }).to_string());
        }
    };
    assert_eq!(
        send(&h.router, "endpoints-update.json", patch(false))
            .await
            .status,
        200
    );
    let path = format!("/org/acme/webhooks/deliveries/{id}/retry");
    let a = send(&h.router, "deliveries-retry.json", |e| set_path(e, &path)).await;
    assert_eq!(a.status, 202);
    assert_eq!(h.step(STEP).await, Handled::Held);
    let held = h.detail(&id).await;
    assert_eq!(held["status"], "succeeded", "{held}");
    assert_eq!(held["attempts"].as_array().map(Vec::len), Some(1));

    assert_eq!(
        send(&h.router, "endpoints-update.json", patch(true))
            .await
            .status,
        200
    );
    assert_eq!(
        h.step(STEP).await,
        Handled::Chunk {
            done: 1,
            more: false
        }
    );
    assert_eq!(
        h.step(STEP).await,
        Handled::Attempted {
            status: DeliveryStatus::Succeeded,
            attempt: 2
        }
    );
    let after = h.detail(&id).await;
    assert_eq!(after["attempts"][1]["trigger"], "manual", "{after}");
    assert_eq!(h.receiver.requests().len(), 2);
}

on_both_backends!(
    a_retry_during_a_slow_attempt_goes_out_when_it_ends,
    a_retry_held_by_a_paused_endpoint_stays_manual,
    a_half_done_publish_is_finished_by_its_repeat,
    a_manual_retry_during_an_attempt_is_not_lost,
    deleting_an_endpoint_purges_its_whole_history,
    delivers_signed_and_records_once,
    retries_on_schedule_then_succeeds,
    exhausted_retries_fail,
    breaker_pauses_and_resume_requeues,
    gone_pauses_at_once,
    blocked_targets_are_never_reached,
    manual_retry_sends_again,
    a_sender_dying_after_the_post_loses_nothing,
    an_enqueue_failure_after_publish_is_recovered,
    long_waits_hop,
);
