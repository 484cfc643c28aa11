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
use shared::adapters::memory::queue::{Jobs, MemoryQueue};
use shared::domain::OrgSlug;
use shared::domain::recovery::FailedPosition;
use shared::domain::time::minute_of;
use shared::domain::{
    Attempt, AttemptOutcome, Delivery, DeliveryKey, DeliveryStatus, Endpoint, Expect, Job,
    RetryPolicy, now,
};
use shared::domain::{DeliverySeq, EndpointNumber};
use shared::pipeline::queue_batch::{QueuedJob, handle_batch};
use shared::pipeline::scheduler;
use shared::pipeline::{Handled, Sender, SenderSettings};
use shared::ports::Store;
use shared::ports::{DeliveryStore, JobQueue, QueueError, RetryOf, StoreError};
use shared::wiring::{self, Services};
use std::sync::Arc;
use std::time::Duration;
use testkit::{Behaviour, HttpsReceiver, Reply, TempDir};
use uuid::Uuid;

pub struct Harness<S: Store> {
    pub store: Arc<S>,
    pub router: axum::Router,
    pub jobs: Jobs,
    pub queue: Arc<MemoryQueue>,
    pub sender: Sender,
    pub receiver: HttpsReceiver,
    /// The receiver's CA file's directory, removed with the harness.
    _certs: TempDir,
}

pub struct Options {
    /// `RETRY_SCHEDULE` in seconds; the harness runs without jitter.
    pub retry: Vec<u64>,
    pub threshold: u32,
    pub allow_loopback: bool,
    /// `ENDPOINT_MAX_IN_FLIGHT`.
    pub max_in_flight: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            retry: vec![1, 1, 1],
            threshold: 20,
            allow_loopback: true,
            max_in_flight: 10,
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
        constrained_roots: Vec::new(),
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
        user_agent: wiring::user_agent(),
        endpoint_max_in_flight: options.max_in_flight,
    }
}

/// What handling a delivery job answers when it made an attempt.
pub fn attempted(status: DeliveryStatus, attempt: u32) -> Handled {
    Handled::Attempted { status, attempt }
}

/// Whether handling a job made an attempt that succeeded.
fn succeeded(handled: &Handled) -> bool {
    matches!(
        handled,
        Handled::Attempted {
            status: DeliveryStatus::Succeeded,
            ..
        }
    )
}

impl<S: Store> Harness<S> {
    pub async fn start(store: Arc<S>, behaviour: Behaviour, options: Options) -> Self {
        seed_keys(store.as_ref()).await;
        let receiver = HttpsReceiver::start(behaviour).await;
        let certs = TempDir::new("it");
        let ca = receiver.write_ca_pem(certs.path());
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
        tokio::time::timeout(wait, self.jobs.recv()).await.ok()
    }

    /// Handle the next due job, handed out for the first time.
    pub async fn step(&mut self, wait: Duration) -> Handled {
        let job = self.next_job(wait).await.expect("a job comes due");
        self.sender.handle(job, false).await.expect("handled")
    }

    /// The endpoint as stored now.
    pub async fn stored_endpoint(&self, id: &str) -> shared::domain::Endpoint {
        self.store
            .get_endpoint(&acme(), id.parse().expect("uuid"))
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

    /// The delivery as stored now.
    /// The delivery the receiver's first POST was for: it must be `retrying` after that
    /// one attempt. Its id.
    pub async fn retrying_after_first_post(&self) -> String {
        let id = self.receiver.requests()[0]
            .header("webhook-id")
            .expect("id")
            .to_owned();
        let d = self.stored_delivery(&id).await;
        assert_eq!((d.status, d.attempt_count()), (DeliveryStatus::Retrying, 1));
        id
    }

    pub async fn stored_delivery(&self, delivery_id: &str) -> Delivery {
        let key = DeliveryKey::from_id(delivery_id.parse().expect("uuid")).expect("a delivery id");
        self.store
            .get_delivery(key)
            .await
            .expect("get")
            .expect("the delivery is stored")
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
    assert_eq!(
        h.sender.handle(job.clone(), false).await.expect("handled"),
        attempted(DeliveryStatus::Succeeded, 1)
    );
    // The same message handed out again (SQS is at-least-once; its receive count says
    // so): the sender reads the delivery first, finds the attempt recorded, and neither
    // posts nor records again.
    assert_eq!(
        h.sender.handle(job.clone(), true).await.expect("dup"),
        Handled::Skipped
    );

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

    // A copy of the message handed out as new is not read first (that read is saved on
    // every first attempt): it posts again, with the same `webhook-id` so the receiver
    // can de-duplicate, and still records nothing twice.
    assert_eq!(
        h.sender.handle(job, false).await.expect("copy"),
        Handled::Skipped
    );
    let got = h.receiver.requests();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].header("webhook-id"), Some(delivery_id.as_str()));
    let d = h.stored_delivery(&delivery_id).await;
    assert_eq!(d.attempt_count(), 1, "one attempt recorded");
    assert_eq!(d.status, DeliveryStatus::Succeeded);
    assert_eq!(h.detail(&delivery_id).await["attempt_count"], 1);
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

    assert_eq!(h.step(STEP).await, attempted(DeliveryStatus::Retrying, 1));
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

    assert_eq!(h.step(STEP).await, attempted(DeliveryStatus::Retrying, 2));
    assert_eq!(h.step(STEP).await, attempted(DeliveryStatus::Succeeded, 3));

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
    assert_eq!(h.step(STEP).await, attempted(DeliveryStatus::Retrying, 1));
    assert_eq!(h.step(STEP).await, attempted(DeliveryStatus::Failed, 2));
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
    assert_eq!(h.step(STEP).await, attempted(DeliveryStatus::Retrying, 1));
    assert_eq!(h.step(STEP).await, attempted(DeliveryStatus::Retrying, 2));
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
        statuses.contains(&attempted(DeliveryStatus::Succeeded, 3)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&attempted(DeliveryStatus::Succeeded, 1)),
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
    assert_eq!(h.step(STEP).await, attempted(DeliveryStatus::Paused, 1));
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
    let (literal, _) = h.endpoint(&["alert.fired"]).await;
    let body = json!({"url": h.receiver.localhost_url("/hook"), "event_types": ["alert.fired"]})
        .to_string();
    let named = send(&h.router, "endpoints-create.json", |e| set_body(e, &body)).await;
    assert_eq!(named.status, 201, "{}", named.json);
    let named = named.json["id"].as_str().expect("id").to_owned();
    h.publish("evt_blocked").await;
    for _ in 0..2 {
        assert_eq!(h.step(STEP).await, attempted(DeliveryStatus::Retrying, 1));
    }
    assert!(
        h.receiver.requests().is_empty(),
        "the receiver was never reached"
    );
    for endpoint_id in [literal, named] {
        let listed = h.deliveries_of(&endpoint_id).await;
        assert_eq!(listed["total"], 1, "{listed}");
        let id = listed["deliveries"][0]["id"].as_str().expect("id");
        let detail = h.detail(id).await;
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
        h.sender.handle(job.clone(), false).await.expect("handled"),
        attempted(DeliveryStatus::Succeeded, 2)
    );
    // Its request is used up: the same message again, handed out before or not, makes
    // no second attempt (a manual job always reads the delivery first).
    for redelivered in [false, true] {
        assert_eq!(
            h.sender
                .handle(job.clone(), redelivered)
                .await
                .expect("dup"),
            Handled::Skipped,
            "one request, one attempt"
        );
    }
    let d = h.detail(&id).await;
    assert_eq!(d["attempts"][1]["trigger"], "manual");
    assert_eq!(h.receiver.requests().len(), 2);
}

/// A delivery store that fails where a test says, around the real one.
struct Faulty<S> {
    inner: Arc<S>,
    /// Fail the next `record_attempt`, as if the sender died after the POST.
    armed: std::sync::atomic::AtomicBool,
    /// Apply the next `record_attempt` or `resume_delivery` but answer that it was
    /// refused, as DynamoDB does when the SDK retries a conditional write that was
    /// applied and answered 500.
    answer_lost: std::sync::atomic::AtomicBool,
    /// Fail writing the delivery for this endpoint, as if a publish died half-way.
    fail_insert_for: Option<Uuid>,
}

#[async_trait]
impl<S: Store> DeliveryStore for Faulty<S> {
    async fn next_delivery_seq(
        &self,
        org: &OrgSlug,
        e: Uuid,
    ) -> Result<Option<DeliverySeq>, StoreError> {
        self.inner.next_delivery_seq(org, e).await
    }
    async fn insert_delivery(&self, d: &Delivery) -> Result<bool, StoreError> {
        if self.fail_insert_for == Some(d.endpoint_id) {
            return Err(StoreError::Backend(
                "injected: the publish died half-way".into(),
            ));
        }
        self.inner.insert_delivery(d).await
    }
    async fn get_delivery(&self, key: DeliveryKey) -> Result<Option<Delivery>, StoreError> {
        self.inner.get_delivery(key).await
    }
    async fn delivery_page(
        &self,
        e: &Endpoint,
        p: u32,
        n: u32,
    ) -> Result<(Vec<Delivery>, u64), StoreError> {
        self.inner.delivery_page(e, p, n).await
    }
    async fn history_newest(
        &self,
        number: EndpointNumber,
        at_or_below: DeliverySeq,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.inner.history_newest(number, at_or_below, limit).await
    }
    async fn find_event_delivery(
        &self,
        number: EndpointNumber,
        after: DeliverySeq,
        event_id: &str,
        created_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<Delivery>, StoreError> {
        self.inner
            .find_event_delivery(number, after, event_id, created_before)
            .await
    }
    async fn record_attempt(
        &self,
        seed: &Delivery,
        expect: Expect,
        a: &Attempt,
        o: &AttemptOutcome,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<Delivery>, StoreError> {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Backend(
                "injected: the sender died after the POST".into(),
            ));
        }
        let recorded = self.inner.record_attempt(seed, expect, a, o, at).await?;
        if self
            .answer_lost
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Ok(None);
        }
        Ok(recorded)
    }
    async fn hold(
        &self,
        seed: &Delivery,
        expect: Expect,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        self.inner.hold(seed, expect, at).await
    }
    async fn request_retry(
        &self,
        key: DeliveryKey,
        request: Uuid,
        of: RetryOf,
    ) -> Result<Option<Delivery>, StoreError> {
        self.inner.request_retry(key, request, of).await
    }
    async fn held_deliveries(
        &self,
        number: EndpointNumber,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.inner.held_deliveries(number, limit).await
    }
    async fn resume_delivery(
        &self,
        held: &Delivery,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        let released = self.inner.resume_delivery(held, at).await?;
        Ok(released
            && !self
                .answer_lost
                .swap(false, std::sync::atomic::Ordering::SeqCst))
    }
    async fn purge_deliveries(
        &self,
        number: EndpointNumber,
        limit: u32,
    ) -> Result<usize, StoreError> {
        self.inner.purge_deliveries(number, limit).await
    }
    async fn failed_deliveries(
        &self,
        number: EndpointNumber,
        since: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
        after: Option<FailedPosition>,
        limit: u32,
    ) -> Result<(Vec<Delivery>, bool), StoreError> {
        self.inner
            .failed_deliveries(number, since, until, after, limit)
            .await
    }
    async fn count_failed(
        &self,
        number: EndpointNumber,
        since: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
        at_most: u64,
    ) -> Result<u64, StoreError> {
        self.inner.count_failed(number, since, until, at_most).await
    }
}

/// Replaces the recovery sweep's test (claims, leases and the sweep are gone): a handling
/// that fails after the POST returns an error, so the message is not deleted (SQS gets it
/// in the batch's failures; the local worker handles it again); the queue hands it out
/// again, marked as redelivered, and the attempt is made again and recorded once.
async fn a_sender_dying_after_the_post_loses_nothing(store: Arc<impl Store>) {
    let mut h = Harness::start(
        store.clone(),
        Behaviour::always(Reply::ok()),
        Options::default(),
    )
    .await;
    h.endpoint(&["alert.fired"]).await;
    h.publish("evt_crash").await;
    h.sender.deliveries = Arc::new(Faulty {
        fail_insert_for: None,
        inner: store.clone(),
        armed: true.into(),
        answer_lost: false.into(),
    });
    let job = h.next_job(STEP).await.expect("job");
    assert!(
        h.sender.handle(job.clone(), false).await.is_err(),
        "the injected crash fails the handling, so the message stays"
    );
    let got = h.receiver.requests();
    assert_eq!(got.len(), 1, "the POST happened");
    let id = got[0].header("webhook-id").expect("id").to_owned();
    let d = h.stored_delivery(&id).await;
    assert_eq!(
        (d.status, d.attempt_count()),
        (DeliveryStatus::Pending, 0),
        "nothing was recorded"
    );

    // Handed out again: its attempt is not recorded, so it is made again.
    assert_eq!(
        h.sender.handle(job.clone(), true).await.expect("again"),
        attempted(DeliveryStatus::Succeeded, 1)
    );
    let got = h.receiver.requests();
    assert_eq!(got.len(), 2, "the try was repeated, not lost");
    assert_eq!(
        got[0].header("webhook-id"),
        got[1].header("webhook-id"),
        "receivers can de-duplicate"
    );
    // Handed out once more (as if that handling had died after recording): the attempt
    // is recorded, so nothing is posted.
    assert_eq!(
        h.sender.handle(job, true).await.expect("once more"),
        Handled::Skipped
    );
    assert_eq!(h.receiver.requests().len(), 2);
    let d = h.stored_delivery(&id).await;
    assert_eq!(d.attempt_count(), 1, "one attempt recorded for one try");
    assert_eq!(d.status, DeliveryStatus::Succeeded);
    assert!(h.next_job(Duration::from_millis(300)).await.is_none());
}

/// A queue that refuses every job.
struct BrokenQueue;

#[async_trait]
impl JobQueue for BrokenQueue {
    /// SQS's, as every queue the sender knows.
    fn max_delay(&self) -> Duration {
        Duration::from_secs(900)
    }

    async fn enqueue(&self, _: Vec<(Job, Duration)>) -> Result<(), QueueError> {
        Err(QueueError("injected: queue unavailable".into()))
    }
}

/// A queue that refuses the next enqueue when armed, and otherwise passes jobs on.
struct FlakyQueue {
    inner: Arc<MemoryQueue>,
    armed: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl JobQueue for FlakyQueue {
    fn max_delay(&self) -> Duration {
        self.inner.max_delay()
    }

    async fn enqueue(&self, jobs: Vec<(Job, Duration)>) -> Result<(), QueueError> {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(QueueError(
                "injected: the sender died before queueing".into(),
            ));
        }
        self.inner.enqueue(jobs).await
    }
}

/// A receiver that fails the first POST and accepts the rest, one endpoint for
/// `alert.fired`, and event `id` published to it.
async fn failing_once_after<S: Store>(store: Arc<S>, id: &str, options: Options) -> Harness<S> {
    let h = Harness::start(
        store,
        Behaviour::sequence([Reply::status(500)], Reply::ok()),
        options,
    )
    .await;
    h.endpoint(&["alert.fired"]).await;
    h.publish(id).await;
    h
}

/// A sender that dies after recording a failed attempt but before queueing the next one
/// loses nothing either: the message is handed out again, its attempt is recorded, so
/// nothing is posted and what follows it (the retry) is queued instead.
async fn a_sender_dying_before_queueing_the_retry_loses_nothing(store: Arc<impl Store>) {
    let mut h = failing_once_after(store, "evt_no_retry_queued", Options::default()).await;
    h.sender.queue = Arc::new(FlakyQueue {
        inner: h.queue.clone(),
        armed: true.into(),
    });
    let job = h.next_job(STEP).await.expect("job");
    assert!(
        h.sender.handle(job.clone(), false).await.is_err(),
        "the retry could not be queued: the handling fails, so the message stays"
    );
    let id = h.retrying_after_first_post().await;
    assert!(h.next_job(Duration::from_millis(1500)).await.is_none());

    assert_eq!(
        h.sender.handle(job, true).await.expect("again"),
        Handled::Skipped,
        "its attempt is recorded: not posted again"
    );
    assert_eq!(h.receiver.requests().len(), 1);
    assert_eq!(h.step(STEP).await, attempted(DeliveryStatus::Succeeded, 2));
    assert_eq!(h.receiver.requests().len(), 2);
    assert_eq!(h.stored_delivery(&id).await.attempt_count(), 2);
}

/// A conditional write applied, answered with an error and retried by the SDK is
/// refused by its own condition: the sender hears "already recorded". The attempt is
/// recorded all the same, so its retry must still be queued (else the delivery stays
/// `retrying` with nothing to move it on).
async fn a_recorded_attempt_answered_as_a_duplicate_still_queues_its_retry(store: Arc<impl Store>) {
    let mut h = failing_once_after(store.clone(), "evt_answer_lost", Options::default()).await;
    h.sender.deliveries = Arc::new(Faulty {
        inner: store.clone(),
        armed: false.into(),
        answer_lost: true.into(),
        fail_insert_for: None,
    });
    let job = h.next_job(STEP).await.expect("job");
    assert_eq!(
        h.sender.handle(job, false).await.expect("handled"),
        Handled::Skipped,
        "the store answered: already recorded"
    );
    h.retrying_after_first_post().await;
    assert_eq!(
        h.step(STEP).await,
        attempted(DeliveryStatus::Succeeded, 2),
        "the retry was queued"
    );
    assert_eq!(h.receiver.requests().len(), 2);
}

/// A held delivery's release, applied and answered "refused" (the SDK's retry of it),
/// still queues its job: else it is neither held nor queued, and no resume finds it.
async fn a_release_answered_as_refused_still_queues_its_job(store: Arc<impl Store>) {
    let mut h = Harness::start(
        store.clone(),
        Behaviour::always(Reply::ok()),
        Options::default(),
    )
    .await;
    let (endpoint_id, _) = h.endpoint(&["alert.fired"]).await;
    let (router, path) = (
        h.router.clone(),
        format!("/org/acme/webhooks/endpoints/{endpoint_id}"),
    );
    let set_active = |active: bool| {
        let body = format!(r#"{{"is_active": {active}}}"#);
        let path = &path;
        send(&router, "endpoints-update.json", move |e| {
            set_path(e, path);
            set_body(e, &body);
        })
    };
    assert_eq!(set_active(false).await.status, 200);
    // Published to a paused endpoint: its delivery is written held, no job queued.
    h.publish("evt_release_lost").await;
    h.sender.deliveries = Arc::new(Faulty {
        inner: store.clone(),
        armed: false.into(),
        answer_lost: true.into(),
        fail_insert_for: None,
    });
    assert_eq!(set_active(true).await.status, 200);
    let resume = h.step(STEP).await;
    assert!(
        matches!(resume, Handled::Chunk { done: 1, .. }),
        "its job is queued: {resume:?}"
    );
    assert_eq!(h.step(STEP).await, attempted(DeliveryStatus::Succeeded, 1));
}

/// Replaces "an enqueue failure after publish is recovered by the sweep" (the sweep is
/// gone): an enqueue that keeps failing fails the publish (500), which still writes the
/// deliveries it numbered (a send reported failed may have been applied) and gives its
/// hold up; the client's retry with the same id finds them, sends their first jobs, and
/// every target gets its delivery exactly once.
async fn an_enqueue_failure_fails_the_publish_and_its_retry_completes_it(store: Arc<impl Store>) {
    let mut h = Harness::start(
        store.clone(),
        Behaviour::always(Reply::ok()),
        Options::default(),
    )
    .await;
    let mut endpoints = Vec::new();
    for _ in 0..2 {
        endpoints.push(h.endpoint(&["alert.fired"]).await.0);
    }
    let broken = Services::new(store.clone(), Arc::new(BrokenQueue)).router();
    // What `Harness::publish` sends, so the retry below is the same event.
    let body =
        json!({"id": "evt_lost_enqueue", "type": "alert.fired", "data": {"n": 1, "text": "héllo"}})
            .to_string();
    let a = send(&broken, "events-publish.json", |e| set_body(e, &body)).await;
    assert_error(&a, 500, "internal_error");
    assert!(
        h.next_job(Duration::from_millis(300)).await.is_none(),
        "nothing was enqueued"
    );
    for id in &endpoints {
        let list = h.deliveries_of(id).await;
        assert_eq!(list["total"], 1, "the number taken is recorded: {list}");
        assert_eq!(list["deliveries"][0]["status"], "pending", "{list}");
    }
    assert!(h.receiver.requests().is_empty(), "nothing was sent");

    // The client's retry, with the same id: the failed publish gave its hold up, so this
    // one completes the fan-out at once, sending the jobs that were never queued.
    let again = h.publish("evt_lost_enqueue").await;
    assert_eq!(again["deliveries"], 2);
    for _ in 0..2 {
        assert_eq!(h.step(STEP).await, attempted(DeliveryStatus::Succeeded, 1));
    }
    assert!(h.next_job(Duration::from_millis(300)).await.is_none());
    let got = h.receiver.requests();
    assert_eq!(got.len(), 2);
    let ids: std::collections::BTreeSet<_> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 2, "one delivery per target");
    for id in &endpoints {
        assert_eq!(h.deliveries_of(id).await["total"], 1, "endpoint {id}");
    }
    // Complete now: one more repeat answers the same and sends nothing.
    assert_eq!(h.publish("evt_lost_enqueue").await, again);
    assert!(h.next_job(Duration::from_millis(300)).await.is_none());
    assert_eq!(h.receiver.requests().len(), 2);
}

/// Replaces the SQS hops of long waits (gone): a retry due later than the queue's longest
/// delay (15 minutes) is not put on the queue at all but in the store's due list, and the
/// scheduler hands it to the queue in its minute, not before; then it is made and
/// recorded.
async fn long_waits_wait_in_the_due_list(store: Arc<impl Store>) {
    let options = Options {
        retry: vec![36_000],
        ..Options::default()
    };
    let mut h = failing_once_after(store.clone(), "evt_long_wait", options).await;
    assert_eq!(h.step(STEP).await, attempted(DeliveryStatus::Retrying, 1));
    let id = h.receiver.requests()[0]
        .header("webhook-id")
        .expect("id")
        .to_owned();
    let d = h.stored_delivery(&id).await;
    let due = d.next_attempt_at.expect("a next attempt");
    let wait = due - d.attempts[0].started_at;
    assert!(
        wait >= chrono::Duration::hours(10)
            && wait < chrono::Duration::hours(10) + chrono::Duration::minutes(1),
        "ten hours after the attempt (no jitter): {wait}"
    );
    assert!(
        h.next_job(Duration::from_millis(500)).await.is_none(),
        "no queue message for a wait of ten hours"
    );
    let minute = minute_of(due);
    let listed = store.due_in_minute(minute).await.expect("due list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (
            listed[0].at,
            listed[0].attempt,
            listed[0].job.delivery_id.to_string()
        ),
        (due, 2, id.clone())
    );

    // The scheduler, run at times the test chooses: an hour before, then up to the last
    // moment of the minute before, hands nothing over.
    let before = minute - chrono::Duration::milliseconds(1);
    for at in [due - chrono::Duration::hours(1), before, before] {
        assert_eq!(
            scheduler::run(store.as_ref(), h.queue.as_ref(), at)
                .await
                .expect("scheduler"),
            0,
            "nothing is due by {at}"
        );
    }
    assert!(h.next_job(Duration::from_millis(300)).await.is_none());
    // In its minute, the job goes to the queue, once.
    assert_eq!(
        scheduler::run(store.as_ref(), h.queue.as_ref(), due)
            .await
            .expect("scheduler"),
        1
    );
    assert_eq!(
        scheduler::run(
            store.as_ref(),
            h.queue.as_ref(),
            due + chrono::Duration::minutes(1)
        )
        .await
        .expect("scheduler"),
        0,
        "handed over once"
    );
    assert_eq!(h.step(STEP).await, attempted(DeliveryStatus::Succeeded, 2));
    assert!(h.next_job(Duration::from_millis(300)).await.is_none());
    let detail = h.detail(&id).await;
    assert_eq!(detail["status"], "succeeded");
    assert_eq!(detail["attempt_count"], 2);
    assert_eq!(h.receiver.requests().len(), 2);
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
    let endpoint = h.stored_endpoint(&endpoint_id).await;
    let target = target_of(&endpoint, endpoint.delivery_seq);
    let event = shared::domain::Event {
        org: acme(),
        id: "evt_bulk".into(),
        event_type: "alert.fired".into(),
        created_at: now(),
        payload: "{}".into(),
        targets: vec![target],
        fan_out_until: None,
        fan_out_holder: None,
    };
    // Numbers taken one at a time (moto's `ADD` is not atomic under concurrent requests,
    // as DynamoDB's is), then concurrent writers to seed quickly.
    let mut seqs = Vec::with_capacity(N);
    for _ in 0..N {
        seqs.push(take_delivery_seq(store.as_ref(), &acme(), target.endpoint_id).await);
    }
    let tasks: Vec<_> = seqs
        .chunks(N / 10)
        .map(|chunk| {
            let (store, event, chunk) = (store.clone(), event.clone(), chunk.to_vec());
            tokio::spawn(async move {
                let mut made = Vec::new();
                for seq in chunk {
                    let event = shared::domain::Event {
                        id: format!("evt_bulk_{seq}"),
                        ..event.clone()
                    };
                    let d = Delivery::new(&event, &target, seq, true);
                    assert!(store.insert_delivery(&d).await.expect("insert"));
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
    // Some with an attempt, embedded in the delivery.
    let mut attempted = Vec::new();
    for d in made.iter().step_by(50) {
        let (attempt, outcome) = succeeded_attempt(1);
        assert!(
            store
                .record_attempt(d, Expect::Attempt(1), &attempt, &outcome, now())
                .await
                .expect("record")
                .is_some()
        );
        attempted.push(d.clone());
    }
    assert_eq!(h.deliveries_of(&endpoint_id).await["total"], N);
    // The endpoint as it was last, to look at its history once it is deleted.
    let endpoint = h.stored_endpoint(&endpoint_id).await;
    assert_eq!(endpoint.delivery_seq, DeliverySeq(N as u64));

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
            &format!("/org/acme/webhooks/deliveries/{}", attempted[0].id),
        )
    })
    .await;
    assert_error(&gone, 404, "not_found");

    let mut chunks = 0;
    while let Some(job) = h.next_job(Duration::from_millis(500)).await {
        match h.sender.handle(job, false).await.expect("purge chunk") {
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
    let (left, total) = store.delivery_page(&endpoint, 1, 100).await.expect("page");
    assert!(left.is_empty(), "{} left", left.len());
    assert_eq!(total, 0);
    for d in attempted {
        assert!(store.get_delivery(d.key).await.expect("get").is_none());
    }
    assert_eq!(
        store
            .purge_deliveries(endpoint.number, 10)
            .await
            .expect("purge"),
        0,
        "nothing left to purge"
    );
}

/// A publish that died half-way is finished. Its first attempts were enqueued before
/// the deliveries were written, so here one write fails after the enqueue (a 500 to the
/// client): the sender writes the missing delivery itself when it records the first
/// attempt, and the client's repeat with the same id, coming while those jobs are
/// handled, waits for them instead of writing again, then answers the first publish's
/// result. Every target ends with exactly one delivery, sent once.
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
            answer_lost: false.into(),
            fail_insert_for: Some(broken_for),
        }),
        events: store.clone(),
        queue: h.queue.clone(),
    };
    let request = shared::pipeline::PublishRequest {
        id: Some("evt_half".into()),
        event_type: "alert.fired".into(),
        // The content `Harness::publish` sends: the repeat is the same event.
        data: json!({"n": 1, "text": "héllo"}),
    };
    let failed = publisher
        .publish(&acme(), request, shared::pipeline::Audience::Subscribers)
        .await;
    assert!(
        failed.is_err(),
        "the injected failure surfaces (a 500 to the client)"
    );
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(
            h.next_job(STEP)
                .await
                .expect("every first attempt was enqueued before the writes"),
        );
    }
    let unwritten = DeliveryKey {
        endpoint_number: h.stored_endpoint(&endpoints[1]).await.number,
        seq: DeliverySeq(1),
    };
    assert_eq!(
        store.get_delivery(unwritten).await.expect("get"),
        None,
        "the failed write"
    );

    let body = json!({"id": "evt_half", "type": "alert.fired", "data": {"n": 1, "text": "héllo"}})
        .to_string();
    let Harness { sender, router, .. } = &h;
    let (again, handled) = tokio::join!(
        send(router, "events-publish.json", |e| set_body(e, &body)),
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut handled = Vec::new();
            for job in first {
                handled.push(sender.handle(job, false).await.expect("handled"));
            }
            handled
        }
    );
    assert_eq!(again.status, 202, "{}", again.json);
    assert_eq!(again.json["deliveries"], 3);
    for outcome in handled {
        assert_eq!(outcome, attempted(DeliveryStatus::Succeeded, 1));
    }
    assert!(
        h.next_job(Duration::from_millis(300)).await.is_none(),
        "the repeat wrote and queued nothing"
    );
    let written = store
        .get_delivery(unwritten)
        .await
        .expect("get")
        .expect("written by the sender");
    assert_eq!(written.attempt_count(), 1);
    for id in &endpoints {
        assert_eq!(
            h.deliveries_of(id).await["total"],
            1,
            "one delivery for endpoint {id}"
        );
    }
    let got = h.receiver.requests();
    assert_eq!(got.len(), 3);
    let ids: std::collections::BTreeSet<_> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 3, "each delivery sent once");
    // And now it is complete, a third publish changes nothing.
    assert_eq!(h.publish("evt_half").await, again.json);
    assert!(h.next_job(Duration::from_millis(300)).await.is_none());
}

/// The receiver's answers for the two concurrent-retry tests: the first request (the
/// automatic attempt) after `first`, every later one (the manual retry) after `later`.
fn first_then(first: Duration, later: Duration) -> Behaviour {
    let seen = std::sync::atomic::AtomicBool::new(false);
    Behaviour::from_fn(move |_| {
        if seen.swap(true, std::sync::atomic::Ordering::SeqCst) {
            Reply::ok().delay(later)
        } else {
            Reply::ok().delay(first)
        }
    })
}

/// Publish one event, take its automatic job, and hand it to the sender; once its POST
/// has reached the receiver (the attempt is in flight), request a manual retry of the
/// delivery and handle its job at once. Returns what each handling came to and the
/// delivery id.
async fn retry_during_attempt(
    h: &mut Harness<impl Store>,
    event_id: &str,
) -> (Handled, Handled, String) {
    h.endpoint(&["alert.fired"]).await;
    h.publish(event_id).await;
    let automatic = h.next_job(STEP).await.expect("automatic job");
    let Job::Deliver { delivery_id, .. } = &automatic else {
        panic!("a delivery job");
    };
    let delivery_id = delivery_id.to_string();
    let path = format!("/org/acme/webhooks/deliveries/{delivery_id}/retry");
    let Harness {
        sender,
        jobs,
        router,
        receiver,
        ..
    } = h;
    let (automatic, manual) = tokio::join!(sender.handle(automatic, false), async {
        let waiting = tokio::time::Instant::now();
        while receiver.requests().is_empty() {
            assert!(waiting.elapsed() < STEP, "the automatic attempt's POST");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let a = send(router, "deliveries-retry.json", |e| set_path(e, &path)).await;
        assert_eq!(a.status, 202, "{}", a.json);
        let manual = tokio::time::timeout(STEP, jobs.recv())
            .await
            .expect("the manual job is queued at once");
        sender.handle(manual, false).await.expect("handled")
    });
    (automatic.expect("handled"), manual, delivery_id)
}

/// Both attempts of [`retry_during_attempt`] recorded, the automatic one as 1 and the
/// manual one as 2, and the manual POST sent while the automatic one was in flight.
/// Both attempts were made and recorded once each, numbered in the order they ended
/// (`ended`: the triggers in that order).
async fn both_attempts_recorded(
    h: &mut Harness<impl Store>,
    delivery_id: &str,
    in_flight: Duration,
    ended: [&str; 2],
) {
    let got = h.receiver.requests();
    assert_eq!(got.len(), 2);
    assert!(
        got[1].received_at.duration_since(got[0].received_at) < in_flight,
        "the manual retry went out while the automatic attempt was in flight"
    );
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    let detail = h.detail(delivery_id).await;
    let attempts = detail["attempts"].as_array().expect("attempts");
    let recorded: Vec<(u64, &str)> = attempts
        .iter()
        .map(|a| {
            (
                a["attempt_number"].as_u64().expect("number"),
                a["trigger"].as_str().expect("trigger"),
            )
        })
        .collect();
    assert_eq!(
        recorded,
        [(1, ended[0]), (2, ended[1])],
        "both recorded: {detail}"
    );
    assert_eq!(detail["status"], "succeeded");
    let d = h.stored_delivery(delivery_id).await;
    assert_eq!(d.manual_retry, None, "the request is used up");
    assert!(
        h.next_job(Duration::from_millis(300)).await.is_none(),
        "nothing deferred, nothing more queued"
    );
}

/// Replaces the deferral of a manual retry while another sender held a claim (claims
/// are gone): the manual job goes out at once, concurrently with the automatic attempt
/// in flight, and both attempts are recorded, numbered in the order they end. Here the
/// automatic attempt (answered after 1.5 s) ends first, while the manual one (answered
/// after 2.5 s) is still in flight; the next test has the manual one end first.
async fn a_manual_retry_during_an_attempt_is_not_lost(store: Arc<impl Store>) {
    let mut h = Harness::start(
        store,
        first_then(Duration::from_millis(1500), Duration::from_millis(2500)),
        Options::default(),
    )
    .await;
    let (automatic, manual, id) = retry_during_attempt(&mut h, "evt_busy").await;
    assert_eq!(automatic, attempted(DeliveryStatus::Succeeded, 1));
    assert!(succeeded(&manual), "{manual:?}");
    both_attempts_recorded(
        &mut h,
        &id,
        Duration::from_millis(1500),
        ["automatic", "manual"],
    )
    .await;
}

/// Replaces "a retry during a slow attempt goes out when it ends" (it was deferred until
/// then): the retry goes out at once, while the slow automatic attempt (answered after
/// 2.5 s) is still in flight, and both are recorded: the manual one, which ends first,
/// as 1, and the automatic one, still the schedule's first, as 2.
async fn a_retry_during_a_slow_attempt_goes_out_at_once(store: Arc<impl Store>) {
    let mut h = Harness::start(
        store,
        first_then(Duration::from_millis(2500), Duration::ZERO),
        Options::default(),
    )
    .await;
    let (automatic, manual, id) = retry_during_attempt(&mut h, "evt_slow").await;
    assert!(succeeded(&manual), "{manual:?}");
    // The manual retry ends first and is recorded as attempt 1; the automatic attempt,
    // still the schedule's first, is recorded after it.
    both_attempts_recorded(
        &mut h,
        &id,
        Duration::from_millis(2500),
        ["manual", "automatic"],
    )
    .await;
    assert!(
        succeeded(&automatic),
        "the slow automatic attempt is recorded too: {automatic:?}"
    );
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
    assert_eq!(h.step(STEP).await, attempted(DeliveryStatus::Succeeded, 2));
    let after = h.detail(&id).await;
    assert_eq!(after["attempts"][1]["trigger"], "manual", "{after}");
    assert_eq!(h.receiver.requests().len(), 2);
}

/// The sender's own cap, as on Lambda (no local worker in front of it): one batch of jobs
/// to one slow endpoint never has more than `ENDPOINT_MAX_IN_FLIGHT` requests at the
/// receiver at once, and every job is still done.
async fn the_sender_caps_attempts_to_one_endpoint(store: Arc<impl Store>) {
    const SLOW: Duration = Duration::from_millis(300);
    let options = Options {
        max_in_flight: 3,
        ..Options::default()
    };
    let mut h = Harness::start(store, Behaviour::always(Reply::ok().delay(SLOW)), options).await;
    h.endpoint(&["alert.fired"]).await;
    let mut batch = Vec::new();
    for i in 0..10u32 {
        h.publish(&format!("evt_cap_{i}")).await;
        let job = h.next_job(STEP).await.expect("a first attempt");
        batch.push(QueuedJob {
            message_id: i,
            job,
            redelivered: false,
        });
    }
    let failed = handle_batch(&h.sender, batch).await;
    assert!(failed.is_empty(), "{failed:?}");
    let got = h.receiver.requests();
    assert_eq!(got.len(), 10);
    assert_eq!(testkit::peak_concurrency(&got, SLOW), 3);
}

on_both_backends!(
    a_retry_during_a_slow_attempt_goes_out_at_once,
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
    a_sender_dying_before_queueing_the_retry_loses_nothing,
    a_recorded_attempt_answered_as_a_duplicate_still_queues_its_retry,
    a_release_answered_as_refused_still_queues_its_job,
    an_enqueue_failure_fails_the_publish_and_its_retry_completes_it,
    long_waits_wait_in_the_due_list,
    the_sender_caps_attempts_to_one_endpoint,
);
