//! Test plumbing: stores on both backends, fixture loading, responses as JSON.

use axum::Router;
use serde_json::Value;
use shared::adapters::dynamo::{DynamoStore, schema};
use shared::adapters::memory::MemoryStore;
use shared::adapters::memory::queue::{Jobs, MemoryQueue};
use shared::domain::validation::MAX_ENDPOINTS_PER_ORG;
use shared::domain::{
    ApiKey, DeliverySeq, Endpoint, EndpointNumber, NewEndpoint, OrgSlug, Role, SigningSecret,
    Target,
};
use shared::ports::KeyStore;
pub use shared::ports::Store;
use shared::wiring::Services;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use testkit::openapi::Contract;

/// Run each listed `async fn case(store)` as a test on the embedded store and on
/// DynamoDB (moto): one contract, two backends.
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod memory_store {
            $(#[tokio::test] async fn $case() { super::$case(crate::common::memory().await).await })*
        }
        mod dynamodb {
            $(#[tokio::test] async fn $case() { super::$case(crate::common::dynamo().await).await })*
        }
    };
}

pub async fn memory() -> Arc<MemoryStore> {
    Arc::new(MemoryStore::new())
}

/// A DynamoDB store on a fresh table in the moto server. Fails (never skips) when the
/// emulator is not configured, so a run without it cannot pass by accident.
pub async fn dynamo() -> Arc<DynamoStore> {
    let (client, table) = dynamo_table().await;
    Arc::new(DynamoStore::new(client, table))
}

/// A fresh table in the moto server, and a client for it.
pub async fn dynamo_table() -> (aws_sdk_dynamodb::Client, String) {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run the tests with scripts/test.sh, which starts moto"
    );
    let config = aws_config::load_from_env().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = format!("it-{}", uuid::Uuid::now_v7());
    schema::create_table(&client, &table)
        .await
        .expect("create the test table in moto");
    (client, table)
}

pub const ADMIN_KEY: &str = "avk_fixture_acme_admin";
pub const MEMBER_KEY: &str = "avk_fixture_acme_member";
pub const PUBLISHER_KEY: &str = "avk_fixture_acme_publisher";
pub const OTHER_ORG_ADMIN_KEY: &str = "avk_fixture_other_admin";
/// The endpoint id the `events/` fixtures address.
pub const FIXTURE_ENDPOINT_ID: &str = "0193a5c2-7d1e-7a00-8000-00000000e001";

/// An organisation the tests name (a valid slug).
pub fn org(slug: &str) -> OrgSlug {
    OrgSlug::parse(slug).expect("a valid organisation slug")
}

/// The fixtures' organisation.
pub fn acme() -> OrgSlug {
    org("acme")
}

/// Register the fixtures' keys: org `acme` (admin, member, publisher) and org `other`.
pub async fn seed_keys(store: &dyn KeyStore) {
    for (key, slug, role) in [
        (ADMIN_KEY, "acme", Role::Admin),
        (MEMBER_KEY, "acme", Role::Member),
        (PUBLISHER_KEY, "acme", Role::Publisher),
        (OTHER_ORG_ADMIN_KEY, "other", Role::Admin),
    ] {
        store
            .insert_key(&ApiKey::new(key, &org(slug), role, shared::domain::now()))
            .await
            .expect("seed key");
    }
}

/// A new admin key of `acme`, as the operator mints it.
pub async fn admin_key(store: &impl Store) -> (String, ApiKey) {
    shared::key_admin::mint(
        store,
        &acme(),
        Role::Admin,
        None,
        shared::domain::KeyStrength::Deployed,
    )
    .await
    .expect("admin key")
}

/// The fixture endpoint's number: the first a fresh store hands out, which
/// [`store_fixture_endpoint`] checks. The fixtures' delivery ids encode it.
pub const FIXTURE_ENDPOINT_NUMBER: u32 = 1;

/// The endpoint the fixtures address, paused with failures on record.
pub fn fixture_endpoint() -> shared::domain::Endpoint {
    let now = shared::domain::now();
    shared::domain::Endpoint {
        org: acme(),
        id: FIXTURE_ENDPOINT_ID.parse().expect("uuid"),
        url: "https://hooks.example.com/fixture".into(),
        description: "fixture".into(),
        event_types: vec!["alert.fired".into()],
        is_active: false,
        paused_by: Some(shared::domain::PausedBy::Manual),
        consecutive_failures: 7,
        secret: SigningSecret::generate(),
        number: EndpointNumber(FIXTURE_ENDPOINT_NUMBER),
        delivery_seq: DeliverySeq(0),
        created_at: now,
        updated_at: now,
    }
}

/// Store `endpoint` (a [`fixture_endpoint`], maybe changed) in a fresh store, with the
/// number the store hands out first, as the API would: so endpoints created later get
/// numbers of their own, and the fixtures' delivery ids name this endpoint's history.
pub async fn store_fixture_endpoint(
    store: &impl Store,
    endpoint: &shared::domain::Endpoint,
) -> shared::domain::Endpoint {
    let number = store
        .allocate_endpoint_number()
        .await
        .expect("endpoint number");
    assert_eq!(
        number,
        EndpointNumber(FIXTURE_ENDPOINT_NUMBER),
        "the fixture endpoint is the first endpoint of a fresh store"
    );
    let endpoint = shared::domain::Endpoint {
        number,
        ..endpoint.clone()
    };
    store
        .insert_endpoint(&endpoint, MAX_ENDPOINTS_PER_ORG)
        .await
        .expect("seed endpoint");
    endpoint
}

/// A new endpoint of `acme` at `url`, subscribed to `event_type`, stored with the next
/// number the store hands out.
pub async fn new_endpoint(store: &impl Store, url: &str, event_type: &str) -> Endpoint {
    let number = store
        .allocate_endpoint_number()
        .await
        .expect("endpoint number");
    let endpoint = Endpoint::create(
        &acme(),
        NewEndpoint {
            url: url.into(),
            description: String::new(),
            event_types: vec![event_type.into()],
        },
        number,
        shared::domain::now(),
    );
    store
        .insert_endpoint(&endpoint, MAX_ENDPOINTS_PER_ORG)
        .await
        .expect("endpoint");
    endpoint
}

/// The next delivery number of an endpoint that exists, taken from the store.
pub async fn take_delivery_seq(
    store: &impl Store,
    org: &OrgSlug,
    endpoint_id: uuid::Uuid,
) -> DeliverySeq {
    store
        .next_delivery_seq(org, endpoint_id)
        .await
        .expect("seq")
        .expect("the endpoint exists")
}

/// Where an event goes: `endpoint`, its deliveries numbered after `seq_floor`.
pub fn target_of(endpoint: &Endpoint, seq_floor: DeliverySeq) -> Target {
    Target {
        endpoint_id: endpoint.id,
        endpoint_number: endpoint.number,
        seq_floor,
    }
}

/// The endpoint the fixtures address, as stored now (it must be there).
pub async fn stored_fixture_endpoint(store: &impl Store) -> Endpoint {
    store
        .get_endpoint(&acme(), fixture_endpoint().id)
        .await
        .expect("get")
        .expect("the fixture endpoint is stored")
}

/// The fixtures' keys ([`seed_keys`]) and their endpoint ([`fixture_endpoint`]), stored;
/// returns the endpoint as stored (its secret is new each time).
pub async fn seed_fixtures(store: &impl Store) -> shared::domain::Endpoint {
    seed_keys(store).await;
    store_fixture_endpoint(store, &fixture_endpoint()).await
}

/// [`seed_fixtures`], then every route on `store` ([`router`]).
pub async fn fixture_router(store: Arc<impl Store>) -> Router {
    seed_fixtures(store.as_ref()).await;
    router(store)
}

/// Every route on `store`, with an embedded queue whose due jobs the caller may read.
pub fn router_with_queue(store: Arc<impl Store>) -> (Router, Jobs) {
    let (queue, jobs) = MemoryQueue::new();
    (Services::new(store, Arc::new(queue)).router(), jobs)
}

/// Every route on `store`; the jobs it enqueues are taken and dropped.
pub fn router(store: Arc<impl Store>) -> Router {
    let (router, mut jobs) = router_with_queue(store);
    tokio::spawn(async move {
        loop {
            jobs.recv().await;
        }
    });
    router
}

pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

pub fn fixture_json(name: &str) -> Value {
    let raw = std::fs::read_to_string(events_dir().join(name)).expect("fixture exists");
    serde_json::from_str(&raw).expect("fixture is JSON")
}

/// A fixture from `events/` with each `(from, to)` of `replacements` replaced in its
/// text (ids, keys), and `body` instead of its own if given.
pub fn fixture_request(
    fixture: &str,
    replacements: &[(&str, &str)],
    body: Option<&Value>,
) -> lambda_http::Request {
    let mut raw = std::fs::read_to_string(events_dir().join(fixture)).expect("fixture");
    for (from, to) in replacements {
        raw = raw.replace(from, to);
    }
    let mut event: Value = serde_json::from_str(&raw).expect("fixture is JSON");
    if let Some(body) = body {
        event["body"] = Value::String(body.to_string());
        event["isBase64Encoded"] = Value::Bool(false);
        if let Some(headers) = event["headers"].as_object_mut() {
            headers.remove("content-length");
        }
    }
    lambda_request(&event)
}

/// Turn an API Gateway v2 event into a request exactly as the Lambda runtime does.
pub fn lambda_request(event: &Value) -> lambda_http::Request {
    lambda_http::request::from_str(&event.to_string()).expect("lambda_http accepts the event")
}

pub struct Answer {
    pub status: u16,
    pub headers: axum::http::HeaderMap,
    pub json: Value,
}

/// docs/openapi.yaml, as the service serves it: every answer `call` gets is checked
/// against it.
pub static CONTRACT: LazyLock<Contract> = LazyLock::new(|| {
    Contract::from_json(shared::api::openapi::OPENAPI_JSON)
        .expect("the served OpenAPI document is a usable contract")
});

/// The routes `template.yaml` wires to API Gateway, as `METHOD /path` (`Method:` followed
/// by `Path:` in each HttpApi event).
pub fn template_routes() -> BTreeSet<String> {
    let template =
        std::fs::read_to_string(events_dir().join("../template.yaml")).expect("template");
    let mut routes = BTreeSet::new();
    let mut method = None;
    for line in template.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("Method: ") {
            method = Some(m.to_owned());
        } else if let (Some(p), Some(m)) = (line.strip_prefix("Path: "), method.take()) {
            routes.insert(format!("{m} {p}"));
        }
    }
    routes
}

/// The web console's files: routed like the API, but pages rather than JSON, so not in
/// docs/openapi.yaml (`console_routes.rs` covers them).
pub fn is_console_route(route: &str) -> bool {
    route.starts_with("GET /console")
}

/// Send `request` to `router` and read the answer, which must be one docs/openapi.yaml
/// describes (status, content type, body schema, error code), whatever the test expects.
pub async fn call(router: &Router, request: lambda_http::Request) -> Answer {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let (status, headers, bytes) = testkit::in_process::ask(router.clone(), request).await;
    if let Err(violation) = CONTRACT.check(&method, &path, status, &headers, &bytes) {
        panic!("an answer docs/openapi.yaml does not describe: {violation}");
    }
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("every answer with a body is JSON")
    };
    Answer {
        status,
        headers,
        json,
    }
}

/// Send a fixture, optionally changed first by `edit`.
pub async fn send(router: &Router, fixture: &str, edit: impl FnOnce(&mut Value)) -> Answer {
    let mut event = fixture_json(fixture);
    edit(&mut event);
    call(router, lambda_request(&event)).await
}

/// Point a fixture at another path (keeping `rawPath` and `requestContext.http.path` in step).
pub fn set_path(event: &mut Value, path: &str) {
    event["rawPath"] = path.into();
    event["requestContext"]["http"]["path"] = path.into();
}

pub fn set_method(event: &mut Value, method: &str) {
    event["requestContext"]["http"]["method"] = method.into();
}

pub fn set_body(event: &mut Value, body: &str) {
    event["body"] = body.into();
    event["isBase64Encoded"] = false.into();
    if let Some(h) = event["headers"].as_object_mut() {
        h.remove("content-length");
    }
}

/// Replace the query string (values of URL-safe characters only: no encoding here).
pub fn set_query(event: &mut Value, pairs: &[(&str, &str)]) {
    assert!(
        pairs.iter().all(|(_, v)| v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:,".contains(&b))),
        "{pairs:?}"
    );
    let raw: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    event["rawQueryString"] = raw.join("&").into();
    event["queryStringParameters"] = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect::<serde_json::Map<_, _>>()
        .into();
}

pub fn set_key(event: &mut Value, key: Option<&str>) {
    let headers = event["headers"].as_object_mut().expect("headers");
    match key {
        Some(k) => {
            headers.insert("authorization".into(), format!("Bearer {k}").into());
        }
        None => {
            headers.remove("authorization");
        }
    }
}

/// The `{"error": {...}}` shape every failure has.
pub fn assert_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.json);
    assert_eq!(answer.json["error"]["code"], code, "{}", answer.json);
    assert!(
        answer.json["error"]["message"].is_string(),
        "{}",
        answer.json
    );
}

/// A 200 answer to attempt `n`, and the outcome that records it as succeeded: for tests
/// that play another sender.
pub fn succeeded_attempt(n: u32) -> (shared::domain::Attempt, shared::domain::AttemptOutcome) {
    (
        shared::domain::Attempt {
            attempt_number: n,
            trigger: shared::domain::Trigger::Automatic,
            started_at: shared::domain::now(),
            duration_ms: 1,
            status_code: Some(200),
            response_body: String::new(),
            error: None,
            succeeded: true,
        },
        shared::domain::AttemptOutcome {
            status: shared::domain::DeliveryStatus::Succeeded,
            next_attempt_at: None,
        },
    )
}
