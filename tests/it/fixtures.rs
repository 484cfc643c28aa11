//! Every `events/` fixture goes through `lambda_http`'s own event conversion and the
//! handler, on both backends, so a fixture that drifts from the code fails here.

use crate::common::*;
use serde_json::Value;
use shared::domain::{DeliverySeq, EndpointNumber};
use shared::ports::KeyStore;
use std::collections::BTreeSet;
use std::sync::Arc;
use uuid::Uuid;

/// Every fixture and the test that covers it; a new file in `events/` must be added here.
const COVERED: &[&str] = &[
    "endpoints-create.json",
    "endpoints-create-base64.json",
    "endpoints-list.json",
    "endpoints-get.json",
    "endpoints-update.json",
    "endpoints-delete.json",
    "endpoints-rotate-secret.json",
    "endpoints-test.json",
    "events-publish.json",
    "deliveries-list.json",
    "deliveries-search.json",
    "deliveries-get.json",
    "deliveries-retry.json",
    "endpoints-stats.json",
    "endpoints-recover.json",
    "recoveries-get.json",
    "key-get.json",
    "portal-sessions-create.json",
    "openapi-get.json",
    "console-get.json",
    "console-file.json",
    "sqs-deliver.json",
    "sqs-batch-with-poison.json",
    // unrouted.rs: the `$default` route's function.
    "unknown-route.json",
    "wrong-method.json",
];

#[test]
fn every_fixture_is_covered() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(events_dir())
        .expect("events/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let covered: BTreeSet<String> = COVERED.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(on_disk, covered);
}

/// The routes the fixtures exercise are exactly the routes `template.yaml` wires to
/// API Gateway (`Method:` followed by `Path:` in each HttpApi event).
#[test]
fn fixtures_and_template_name_the_same_routes() {
    let from_fixtures: BTreeSet<String> = COVERED
        .iter()
        .filter_map(|f| fixture_json(f)["routeKey"].as_str().map(str::to_owned))
        .filter(|route| route != "$default")
        .collect();
    assert_eq!(template_routes(), from_fixtures);
}

/// `GET /key` names the calling key's organisation and role, whatever they are, and never
/// the key.
#[tokio::test]
async fn key_fixture_describes_the_calling_key() {
    let r = fixture_router(memory().await).await;
    let admin = send(&r, "key-get.json", |_| {}).await;
    assert_eq!(admin.status, 200, "{}", admin.json);
    assert_eq!(
        (&admin.json["org"], &admin.json["role"]),
        (&Value::from("acme"), &Value::from("admin"))
    );
    assert!(!admin.json.to_string().contains(ADMIN_KEY));
    let other = send(&r, "key-get.json", |e| {
        e["headers"]["authorization"] = Value::from(format!("Bearer {OTHER_ORG_ADMIN_KEY}"));
    })
    .await;
    assert_eq!(other.status, 200, "{}", other.json);
    assert_ne!(other.json["org"], "acme");
}

/// A portal session's token works for its organisation and role, shows in the key list
/// with its end, and is refused like an unknown key once that has passed.
#[tokio::test]
async fn portal_session_fixture_mints_a_token_that_ends() {
    let store = memory().await;
    let r = fixture_router(store.clone()).await;
    let created = send(&r, "portal-sessions-create.json", |_| {}).await;
    assert_eq!(created.status, 201, "{}", created.json);
    let token = created.json["token"].as_str().expect("token").to_owned();
    let url = created.json["url"].as_str().expect("url");
    assert!(
        url.ends_with(&format!("/console/#token={token}"))
            && url.starts_with("https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"),
        "{url}"
    );
    let described = send(&r, "key-get.json", |e| {
        e["headers"]["authorization"] = Value::from(format!("Bearer {token}"));
    })
    .await;
    assert_eq!(
        (&described.json["org"], &described.json["role"]),
        (&Value::from("acme"), &Value::from("member")),
        "the fixture asks for a member session"
    );
    let listed = store.list_keys(&acme()).await.expect("keys");
    let session = listed
        .iter()
        .find(|k| k.hash == shared::domain::KeyHash::of(&token))
        .expect("listed");
    let ends = session.expires_at.expect("an end");
    let asked = chrono::DateTime::parse_from_rfc3339(
        created.json["expires_at"].as_str().expect("expires_at"),
    )
    .expect("RFC 3339")
    .to_utc();
    assert_eq!(ends.timestamp(), asked.timestamp());
    assert!(
        (ends - session.created_at).num_seconds() >= 899,
        "ttl_seconds 900"
    );

    // Past its end (stored as if made 901 seconds ago): refused like an unknown key.
    let mut ended = session.clone();
    ended.expires_at = Some(shared::domain::now() - chrono::Duration::seconds(1));
    store.delete_key(&ended.hash).await.expect("delete");
    store.insert_key(&ended).await.expect("insert");
    let refused = send(&r, "key-get.json", |e| {
        e["headers"]["authorization"] = Value::from(format!("Bearer {token}"));
    })
    .await;
    assert_eq!(refused.status, 401, "{}", refused.json);
}

/// `GET /openapi.json` needs no key and serves the document the tests check against.
#[tokio::test]
async fn openapi_fixture_serves_the_document() {
    let r = router(memory().await);
    let served = send(&r, "openapi-get.json", |_| {}).await;
    assert_eq!(served.status, 200, "{}", served.json);
    assert_eq!(served.headers["content-type"], "application/json");
    assert_eq!(served.json["openapi"], "3.1.0");
    assert_eq!(&served.json, CONTRACT.document());
}

/// `template.yaml` projects into `gsi1` exactly the attributes the code's table
/// definition does (the tests run on the latter).
#[test]
fn template_and_code_project_the_same_gsi1_attributes() {
    let template =
        std::fs::read_to_string(events_dir().join("../template.yaml")).expect("template");
    let after = template
        .split("NonKeyAttributes:")
        .nth(1)
        .expect("gsi1 lists its attributes");
    let listed: Vec<&str> = after
        .lines()
        .skip(1)
        .map(str::trim)
        .take_while(|l| l.starts_with("- "))
        .map(|l| l.trim_start_matches("- "))
        .collect();
    assert_eq!(listed, shared::adapters::dynamo::schema::GSI1_ATTRIBUTES);
}

async fn every_fixture_answers_as_specified(store: Arc<impl Store>) {
    let fixture = seed_fixtures(store.as_ref()).await;
    let r = router(store.clone());

    // Create, plain and base64-encoded bodies.
    let created = send(&r, "endpoints-create.json", |_| {}).await;
    assert_eq!(created.status, 201, "{}", created.json);
    let body: Value = serde_json::from_str(
        fixture_json("endpoints-create.json")["body"]
            .as_str()
            .expect("body"),
    )
    .expect("body JSON");
    let c = &created.json;
    assert_eq!(c["url"], body["url"]);
    assert_eq!(c["description"], body["description"]);
    assert_eq!(c["event_types"], body["event_types"]);
    assert_eq!(c["is_active"], true);
    assert_eq!(c["consecutive_failures"], 0);
    assert_eq!(c["created_at"], c["updated_at"]);
    let id: Uuid = c["id"].as_str().expect("id").parse().expect("uuid");
    assert_eq!(id.get_version_num(), 7);
    let secret = c["secret"].as_str().expect("secret returned on create");
    assert!(secret.starts_with("whsec_"));
    let stored = store
        .get_endpoint(&acme(), id)
        .await
        .expect("get")
        .expect("created endpoint is stored");
    assert_eq!(stored.secret.expose(), secret);

    let b64 = send(&r, "endpoints-create-base64.json", |_| {}).await;
    assert_eq!(b64.status, 201, "{}", b64.json);
    assert_eq!(b64.json["url"], "https://hooks.example.com/b64");

    // List (a member key may read): newest first, never a secret.
    let listed = send(&r, "endpoints-list.json", |_| {}).await;
    assert_eq!(listed.status, 200, "{}", listed.json);
    let list = listed.json["endpoints"]
        .as_array()
        .expect("endpoints array");
    let ids: Vec<&str> = list.iter().map(|e| e["id"].as_str().expect("id")).collect();
    assert_eq!(
        ids,
        [
            b64.json["id"].as_str().expect("id"),
            c["id"].as_str().expect("id"),
            FIXTURE_ENDPOINT_ID
        ]
    );
    assert!(list.iter().all(|e| e.get("secret").is_none()));
    assert!(!listed.json.to_string().contains("whsec_"));

    // Get (a member key may read): the endpoint as listed, never its secret.
    let got = send(&r, "endpoints-get.json", |_| {}).await;
    assert_eq!(got.status, 200, "{}", got.json);
    assert_eq!(got.json["id"], FIXTURE_ENDPOINT_ID);
    let as_listed = list
        .iter()
        .find(|e| e["id"] == FIXTURE_ENDPOINT_ID)
        .expect("listed");
    assert_eq!(&got.json, as_listed);
    assert!(got.json.get("secret").is_none());

    // Update: description and is_active false; pausing keeps the failure count.
    let updated = send(&r, "endpoints-update.json", |_| {}).await;
    assert_eq!(updated.status, 200, "{}", updated.json);
    assert_eq!(updated.json["id"], FIXTURE_ENDPOINT_ID);
    assert_eq!(updated.json["description"], "Paused for maintenance");
    assert_eq!(updated.json["is_active"], false);
    assert_eq!(updated.json["consecutive_failures"], 7);
    assert_eq!(updated.json["url"], fixture.url.as_str());
    assert!(updated.json.get("secret").is_none());

    // Rotate: a new secret, returned once, and the stored one replaced at once.
    let rotated = send(&r, "endpoints-rotate-secret.json", |_| {}).await;
    assert_eq!(rotated.status, 200, "{}", rotated.json);
    assert_eq!(rotated.json["id"], FIXTURE_ENDPOINT_ID);
    let new_secret = rotated.json["secret"].as_str().expect("secret");
    assert!(new_secret.starts_with("whsec_"));
    assert_ne!(new_secret, fixture.secret.expose());
    let after = store
        .get_endpoint(&acme(), fixture.id)
        .await
        .expect("get")
        .expect("still there");
    assert_eq!(after.secret.expose(), new_secret);
    assert_eq!(rotated.json.as_object().expect("object").len(), 2);

    // Delete: 204 without a body, then gone.
    let deleted = send(&r, "endpoints-delete.json", |_| {}).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.json, Value::Null);
    assert!(
        store
            .get_endpoint(&acme(), fixture.id)
            .await
            .expect("get")
            .is_none()
    );
    let again = send(&r, "endpoints-delete.json", |_| {}).await;
    assert_error(&again, 404, "not_found");
    let gone = send(&r, "endpoints-get.json", |_| {}).await;
    assert_error(&gone, 404, "not_found");
}

/// The delivery id the `events/` fixtures address: the first delivery (seq 1) of the
/// fixture endpoint (number 1), created at the fixtures' time. Ids name their place in
/// the store (`DeliveryKey`), so the fixtures hold ids of this shape.
const FIXTURE_DELIVERY_ID: &str = "01a21c04-b400-7000-8000-040000000001";
/// `requestContext.timeEpoch` of the fixtures: 2026-11-27T08:00:00.000Z.
const FIXTURE_TIME: &str = "2026-11-27T08:00:00.000Z";

#[test]
fn the_fixture_delivery_id_names_the_seeded_delivery() {
    use shared::domain::DeliveryKey;
    let at = chrono::DateTime::parse_from_rfc3339(FIXTURE_TIME)
        .expect("rfc3339")
        .to_utc();
    let key = DeliveryKey {
        endpoint_number: EndpointNumber(FIXTURE_ENDPOINT_NUMBER),
        seq: DeliverySeq(1),
    };
    assert_eq!(key.id(at).to_string(), FIXTURE_DELIVERY_ID);
    let id = FIXTURE_DELIVERY_ID.parse().expect("uuid");
    assert_eq!(DeliveryKey::from_id(id), Some(key));
    for fixture in [
        "deliveries-get.json",
        "deliveries-retry.json",
        "sqs-deliver.json",
        "sqs-batch-with-poison.json",
    ] {
        assert!(
            fixture_json(fixture)
                .to_string()
                .contains(FIXTURE_DELIVERY_ID),
            "{fixture} addresses the seeded delivery"
        );
    }
}

async fn pipeline_fixtures_answer_as_specified(store: Arc<impl Store>) {
    use crate::pipeline::{Harness, Options};
    use aws_lambda_events::event::sqs::SqsEvent;
    use shared::domain::{Delivery, DeliveryKey, Event};
    use shared::wiring::sqs_batch::handle_sqs_batch;
    use testkit::{Behaviour, Reply};

    let h = Harness::start(
        store.clone(),
        Behaviour::always(Reply::ok()),
        Options::default(),
    )
    .await;
    let mut endpoint = fixture_endpoint();
    endpoint.url = h.receiver.url("/hook");
    endpoint.is_active = true;
    endpoint.paused_by = None;
    let endpoint = store_fixture_endpoint(store.as_ref(), &endpoint).await;
    // The event the SQS fixtures' jobs carry (their `event` and `payload`).
    let event = Event {
        org: acme(),
        id: "evt_seeded".into(),
        event_type: "alert.fired".into(),
        created_at: chrono::DateTime::parse_from_rfc3339(FIXTURE_TIME)
            .expect("rfc3339")
            .to_utc(),
        payload: format!(
            r#"{{"id":"evt_seeded","type":"alert.fired","created_at":"{FIXTURE_TIME}","org":"acme","data":{{}}}}"#
        ),
        targets: vec![],
        fan_out_until: None,
        fan_out_holder: None,
    };
    assert_eq!(store.insert_event(&event).await.expect("event"), None);
    let seq = take_delivery_seq(store.as_ref(), &acme(), endpoint.id).await;
    let seeded = Delivery::new(&event, &target_of(&endpoint, DeliverySeq::NONE), seq, true);
    assert_eq!(seeded.id.to_string(), FIXTURE_DELIVERY_ID);
    assert!(store.insert_delivery(&seeded).await.expect("delivery"));
    // The SQS fixtures carry exactly the job a publish enqueues for it (a v2 job with the
    // event and its payload).
    for fixture in ["sqs-deliver.json", "sqs-batch-with-poison.json"] {
        let body = fixture_json(fixture)["Records"][0]["body"]
            .as_str()
            .map(str::to_owned)
            .expect("body");
        let job: shared::domain::Job = serde_json::from_str(&body).expect("a job");
        assert_eq!(
            job,
            shared::pipeline::publish::first_job(&event, &seeded),
            "{fixture}"
        );
    }
    let r = &h.router;

    let published = send(r, "events-publish.json", |_| {}).await;
    assert_eq!(published.status, 202, "{}", published.json);
    assert_eq!(
        published.json,
        serde_json::json!({"event_id": "evt_fixture_0001", "deliveries": 1})
    );
    let tested = send(r, "endpoints-test.json", |_| {}).await;
    assert_eq!(tested.status, 202, "{}", tested.json);
    assert_eq!(tested.json["deliveries"], 1);
    assert!(
        tested.json["delivery_id"]
            .as_str()
            .is_some_and(|d| d.parse::<Uuid>().is_ok())
    );

    let listed = send(r, "deliveries-list.json", |_| {}).await;
    assert_eq!(listed.status, 200, "{}", listed.json);
    assert_eq!(
        (
            listed.json["total"].as_u64(),
            listed.json["page"].as_u64(),
            listed.json["per_page"].as_u64()
        ),
        (Some(3), Some(1), Some(2))
    );
    let page = listed.json["deliveries"].as_array().expect("deliveries");
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["id"], tested.json["delivery_id"], "newest first");
    assert_eq!(page[1]["event_id"], "evt_fixture_0001");

    // The org's search, two at a time, the cursor to the rest; filters and foreign ids.
    let searched = send(r, "deliveries-search.json", |_| {}).await;
    assert_eq!(searched.status, 200, "{}", searched.json);
    assert_eq!(
        searched.json["deliveries"], listed.json["deliveries"],
        "the same newest two"
    );
    let cursor = searched.json["next_cursor"]
        .as_str()
        .expect("more to come")
        .to_owned();
    let rest = send(r, "deliveries-search.json", |e| {
        set_query(e, &[("cursor", &cursor), ("limit", "2")]);
    })
    .await;
    assert_eq!(rest.status, 200, "{}", rest.json);
    let rest_ids: Vec<&Value> = rest.json["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| &d["id"])
        .collect();
    assert_eq!(rest_ids, [&Value::from(FIXTURE_DELIVERY_ID)]);
    assert_eq!(rest.json["next_cursor"], Value::Null, "nothing left");
    for (query, expected) in [
        (vec![("status", "failed")], 0),
        (vec![("event_type", "alert.fired"), ("limit", "10")], 2),
        (
            vec![("endpoint_id", "0193a5c2-7d1e-7a00-8000-0000000000ff")],
            0,
        ),
        (vec![("until", FIXTURE_TIME)], 0),
    ] {
        let found = send(r, "deliveries-search.json", |e| set_query(e, &query)).await;
        assert_eq!(found.status, 200, "{query:?}: {}", found.json);
        assert_eq!(
            found.json["deliveries"].as_array().map(Vec::len),
            Some(expected),
            "{query:?}: {}",
            found.json
        );
    }
    for (name, value) in [
        ("status", "done"),
        ("cursor", "nonsense"),
        ("since", "yesterday"),
        ("endpoint_id", "e1"),
    ] {
        let refused = send(r, "deliveries-search.json", |e| {
            set_query(e, &[(name, value)])
        })
        .await;
        assert_eq!(refused.status, 400, "{name}={value}: {}", refused.json);
        assert_eq!(refused.json["error"]["field"], name);
    }

    let got = send(r, "deliveries-get.json", |_| {}).await;
    assert_eq!(got.status, 200, "{}", got.json);
    assert_eq!(got.json["id"], FIXTURE_DELIVERY_ID);
    assert_eq!(got.json["status"], "pending");
    assert_eq!(got.json["attempts"], serde_json::json!([]));
    assert_eq!(got.json["payload"]["id"], "evt_seeded");

    // The sender's SQS events, through aws_lambda_events' own types.
    let deliver: SqsEvent =
        serde_json::from_value(fixture_json("sqs-deliver.json")).expect("SqsEvent");
    let response = handle_sqs_batch(&h.sender, deliver).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(h.receiver.requests().len(), 1);
    assert_eq!(
        h.receiver.requests()[0].header("webhook-id"),
        Some(FIXTURE_DELIVERY_ID)
    );

    let retried = send(r, "deliveries-retry.json", |_| {}).await;
    assert_eq!(retried.status, 202, "{}", retried.json);
    assert_eq!(retried.json["delivery_id"], FIXTURE_DELIVERY_ID);

    // A redelivered job (already done) succeeds quietly; the poison message is failed
    // back to SQS, which moves it to the dead-letter queue after maxReceiveCount.
    let mixed: SqsEvent =
        serde_json::from_value(fixture_json("sqs-batch-with-poison.json")).expect("SqsEvent");
    let response = handle_sqs_batch(&h.sender, mixed).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["2e1424d4-f796-459a-8184-9c92662be6da"]);
    assert_eq!(h.receiver.requests().len(), 1, "the duplicate sent nothing");
    let key = DeliveryKey::from_id(seeded.id).expect("a delivery id");
    let stored = store.get_delivery(key).await.expect("get").expect("stored");
    assert_eq!(stored.attempt_count(), 1);
    assert!(
        stored.manual_retry.is_some(),
        "the retry's request stays open for its own job"
    );
}

on_both_backends!(
    every_fixture_answers_as_specified,
    pipeline_fixtures_answer_as_specified,
);
