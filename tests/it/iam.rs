//! Least privilege, proven: every DynamoDB and SQS request each function makes is
//! allowed by that function's role in `template.yaml`, and requests it must never make
//! are denied.
//!
//! The requests come from the capacity meter (testkit's proxy in front of moto), which
//! logs each one with the function that sent it (the SDK app name each function's
//! clients carry, `wiring::Function::sdk_loader`): the capacity scenarios (publish and
//! deliver, `tests/meter`, small), then a tour of every other route and job: each
//! endpoint route, a portal session, the key route, each delivery route, a recovery, a
//! failing receiver that trips the breaker and parks a retry in the due list, the
//! scheduler handing it over, a resume and a delete with their queue jobs. The log goes
//! to `tests/iam/check.py` (aws-sam-translator, pinned, in the virtualenv
//! scripts/test.sh installs; `AVW_IAM_PYTHON`), which turns the template into each
//! role's statements and evaluates every request against them.

use crate::capacity::meter::{self, Metered};
use crate::common::{
    FIXTURE_ENDPOINT_ID, call, events_dir, fixture_json, fixture_request, target_of,
};
use serde_json::{Value, json};
use shared::adapters::dynamo::DynamoStore;
use shared::domain::{ApiKey, DeliverySeq, Event, OrgSlug, RetryPolicy, Role, now};
use shared::pipeline::{SenderSettings, scheduler};
use shared::ports::{EndpointStore, EventStore, KeyStore};
use shared::wiring::{self, Function};
use std::sync::Arc;
use std::time::Duration;
use testkit::capacity::Access;
use testkit::{Behaviour, HttpsReceiver, Reply};

/// Each API function's own admin key, never used before: its first request records the
/// key's last use, as on a fresh deployment.
fn key_of(function: Function) -> String {
    format!(
        "avk_iam_{}_admin_key_of_32_characters_or_more",
        function.name()
    )
    .replace('-', "_")
}

/// A fixture from `events/` with the tour's endpoint, delivery or recovery id, the
/// function's key, and `body` if given.
fn request(
    fixture: &str,
    function: Function,
    ids: &[(&str, &str)],
    body: Option<&Value>,
) -> lambda_http::Request {
    let key = key_of(function);
    let mut replacements = ids.to_vec();
    for fixture_key in [
        "avk_fixture_acme_admin",
        "avk_fixture_acme_member",
        "avk_fixture_acme_publisher",
    ] {
        replacements.push((fixture_key, &key));
    }
    fixture_request(fixture, &replacements, body)
}

/// The fixtures' delivery and recovery ids, replaced by the tour's.
fn fixture_id(fixture: &str, field: &str) -> String {
    fixture_json(fixture)["pathParameters"][field]
        .as_str()
        .expect("a path parameter")
        .to_owned()
}

/// Plays the sender's event source mapping until the queue stays empty: receive (with
/// the sender's role), run the batch, delete what did not fail.
async fn drain(sender: &shared::pipeline::Sender, sqs: &aws_sdk_sqs::Client, url: &str) {
    let mut quiet = 0;
    for _ in 0..60 {
        let messages = meter::receive(sqs, url, 1).await;
        if messages.is_empty() {
            quiet += 1;
            if quiet == 3 {
                return;
            }
            continue;
        }
        quiet = 0;
        meter::run_batch(sender, sqs, url, &messages).await;
    }
    panic!("the queue never emptied");
}

/// Every route and job the capacity scenarios leave out, through the meter.
async fn tour() -> Vec<Access> {
    let moto =
        std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL: run through scripts/test.sh");
    let rig = meter::Rig::start(&moto, "iam", 30).await;
    let (meter, name, queue_url) = (&rig.meter, rig.name.clone(), rig.queue_url.clone());
    let direct = DynamoStore::new(rig.dynamo.clone(), name.clone());
    let org = OrgSlug::parse("acme").expect("slug");
    for function in [
        Function::EndpointsApi,
        Function::DeliveriesApi,
        Function::PublishApi,
    ] {
        direct
            .insert_key(&ApiKey::new(&key_of(function), &org, Role::Admin, now()))
            .await
            .expect("seed key");
    }
    let metered = |f| Metered::start(meter, f, &name, &queue_url);
    let (endpoints, deliveries, publishing, sending, scheduling) = (
        metered(Function::EndpointsApi).await,
        metered(Function::DeliveriesApi).await,
        metered(Function::PublishApi).await,
        metered(Function::Sender).await,
        metered(Function::Scheduler).await,
    );

    // A receiver that always fails: retries, the breaker, the due list, held deliveries.
    let receiver = HttpsReceiver::start(Behaviour::always(Reply::status(500))).await;
    let certs = std::env::temp_dir().join(format!("avw-{name}"));
    std::fs::create_dir_all(&certs).expect("temp dir");
    let client = meter::trusting(&receiver, &certs);
    let sender = wiring::sender(
        sending.store.clone(),
        sending.queue.clone(),
        Arc::new(client),
        SenderSettings {
            // A retry the queue delays, then one an hour later: the due list's.
            retry: RetryPolicy {
                delays: vec![Duration::from_secs(1), Duration::from_secs(3600)],
                jitter: 0.0,
            },
            breaker_threshold: 4,
            user_agent: wiring::user_agent(),
            endpoint_max_in_flight: 10,
        },
    );

    let api = |m: &Metered| m.router();
    // A request that must succeed: its answer's JSON.
    let step = |router: axum::Router, request, what: &'static str| async move {
        let answer = call(&router, request).await;
        let status = answer.status;
        assert!(
            (200..300).contains(&status),
            "{what}: {status} {}",
            answer.json
        );
        answer.json
    };

    // endpoints-api: create, read, change, rotate, test, a portal session, the key.
    let e = Function::EndpointsApi;
    let body = json!({"url": receiver.url("/hook"), "event_types": ["alert.fired"]});
    let created = step(
        api(&endpoints),
        request("endpoints-create.json", e, &[], Some(&body)),
        "create endpoint",
    )
    .await;
    let id = created["id"].as_str().expect("endpoint id").to_owned();
    let ep = [(FIXTURE_ENDPOINT_ID, id.as_str())];
    for (fixture, body) in [
        ("endpoints-list.json", None),
        ("endpoints-get.json", None),
        (
            "endpoints-update.json",
            Some(json!({"description": "tour"})),
        ),
        ("endpoints-rotate-secret.json", None),
        ("endpoints-test.json", None),
        ("portal-sessions-create.json", None),
        ("key-get.json", None),
    ] {
        step(
            api(&endpoints),
            request(fixture, e, &ep, body.as_ref()),
            fixture,
        )
        .await;
    }

    // publish-api, then the sender until the breaker pauses the endpoint and the
    // hour-later retry waits in the due list.
    let body = json!({"id": "evt_iam_tour", "type": "alert.fired", "data": {"n": 1}});
    let publish = |body: Value| {
        let request = request(
            "events-publish.json",
            Function::PublishApi,
            &[],
            Some(&body),
        );
        step(api(&publishing), request, "publish")
    };
    publish(body).await;
    // A publish whose writer died mid fan-out (its hold passed): a repeat takes it over.
    let subscribed = direct
        .get_endpoint(&org, id.parse().expect("uuid"))
        .await
        .expect("read")
        .expect("the endpoint");
    let (event_id, data, at) = ("evt_iam_interrupted", json!({"n": 1}), now());
    let interrupted = Event {
        org: org.clone(),
        id: event_id.to_owned(),
        event_type: "alert.fired".to_owned(),
        created_at: at,
        payload: json!({"id": event_id, "type": "alert.fired", "org": "acme", "data": data,
                        "created_at": shared::domain::time::format(&at)})
        .to_string(),
        targets: vec![target_of(&subscribed, DeliverySeq(0))],
        fan_out_until: Some(now() - chrono::Duration::minutes(1)),
        fan_out_holder: None,
    };
    direct.insert_event(&interrupted).await.expect("seed event");
    let repeat = json!({"id": event_id, "type": "alert.fired", "data": data});
    publish(repeat).await;
    drain(&sender, &sending.sqs, &queue_url).await;

    // deliveries-api: search, list, get, retry, stats, a recovery (dry run and real).
    let d = Function::DeliveriesApi;
    step(
        api(&deliveries),
        request("deliveries-search.json", d, &[], None),
        "search",
    )
    .await;
    let listed = step(
        api(&deliveries),
        request("deliveries-list.json", d, &ep, None),
        "list deliveries",
    )
    .await;
    let delivery = listed["deliveries"][0]["id"]
        .as_str()
        .expect("a delivery")
        .to_owned();
    let fixture_delivery = fixture_id("deliveries-get.json", "delivery_id");
    let ids = [
        (FIXTURE_ENDPOINT_ID, id.as_str()),
        (fixture_delivery.as_str(), delivery.as_str()),
    ];
    for fixture in [
        "deliveries-get.json",
        "deliveries-retry.json",
        "endpoints-stats.json",
    ] {
        step(api(&deliveries), request(fixture, d, &ids, None), fixture).await;
    }
    let dry_run = json!({"since": "2020-01-01T00:00:00Z", "dry_run": true});
    step(
        api(&deliveries),
        request("endpoints-recover.json", d, &ep, Some(&dry_run)),
        "recover, dry run",
    )
    .await;
    let since = json!({"since": "2020-01-01T00:00:00Z"});
    let recovery = step(
        api(&deliveries),
        request("endpoints-recover.json", d, &ep, Some(&since)),
        "recover",
    )
    .await;
    let fixture_recovery = fixture_id("recoveries-get.json", "recovery_id");
    let recovery_id = recovery["recovery_id"].as_str().expect("recovery id");
    let ids = [(fixture_recovery.as_str(), recovery_id)];
    step(
        api(&deliveries),
        request("recoveries-get.json", d, &ids, None),
        "get recovery",
    )
    .await;
    drain(&sender, &sending.sqs, &queue_url).await;

    // The scheduler, just before the parked retry's hour is up, then after: the second
    // run catches up the minutes since and hands the retry over.
    for minutes in [59, 62] {
        let at = now() + chrono::Duration::minutes(minutes);
        scheduler::run(scheduling.store.as_ref(), scheduling.queue.as_ref(), at)
            .await
            .expect("scheduler");
    }

    // endpoints-api: resume (held deliveries back on the queue), then delete (purge).
    let resume = json!({"is_active": true});
    for (fixture, body, what) in [
        ("endpoints-update.json", Some(&resume), "resume"),
        ("endpoints-delete.json", None, "delete"),
    ] {
        step(api(&endpoints), request(fixture, e, &ep, body), what).await;
        drain(&sender, &sending.sqs, &queue_url).await;
    }

    let accesses = meter.take_accesses();
    rig.remove().await;
    let _ = std::fs::remove_dir_all(&certs);
    accesses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_is_allowed_what_it_does_and_denied_what_it_must_not() {
    let python = std::env::var("AVW_IAM_PYTHON").expect(
        "AVW_IAM_PYTHON: run the tests with scripts/test.sh (it installs aws-sam-translator)",
    );
    let mut accesses = Vec::new();
    // Publishing and delivering, as the capacity scenarios do (ten deliveries each, the
    // fewest the retry scenario's batches allow; b fans one event out to ten endpoints;
    // d retries).
    for scenario in meter::scenarios(10) {
        if ["a", "b", "d"].contains(&scenario.id) {
            accesses.extend(meter::run(&scenario).await.accesses);
        }
    }
    accesses.extend(tour().await);
    let unnamed: Vec<&Access> = accesses.iter().filter(|a| a.caller.is_empty()).collect();
    assert!(
        unnamed.is_empty(),
        "requests without a function: {unnamed:?}"
    );

    let log = std::env::temp_dir().join(format!("avw-iam-{}.json", uuid::Uuid::now_v7()));
    let json: Vec<Value> = accesses.iter().map(Access::to_json).collect();
    std::fs::write(&log, Value::Array(json).to_string()).expect("write the log");
    let root = events_dir().join("..");
    let output = std::process::Command::new(python)
        .arg(root.join("tests/iam/check.py"))
        .arg("--template")
        .arg(root.join("template.yaml"))
        .arg("--requests")
        .arg(&log)
        .output()
        .expect("run tests/iam/check.py");
    let _ = std::fs::remove_file(&log);
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
