//! Faults: the real adapters (`DynamoStore`, `SqsQueue`, each function's SDK clients as
//! `wiring` builds them) on moto behind testkit's proxy, which fails 10 % of their
//! DynamoDB and SQS requests, half before moto applies them and half after (the client
//! gets a 500 either way and the SDK retries it, as on AWS). Per seed:
//!
//! 1. publish (the real publish route) events to four endpoints, by clients that retry a
//!    5xx or a `409 publish_in_progress` with the same event id, while an endpoint's
//!    secret is rotated; nothing is delivered yet (a sender with a backlog);
//! 2. a poller plays the sender's event source mapping: receive, `handle_sqs_batch`,
//!    delete what did not fail, make what failed visible again. The receiver fails the
//!    first POST of a quarter of the deliveries to two endpoints (a retry 1 s later), all
//!    of them to a third (the breaker pauses it) and to a fourth (three attempts, then
//!    the retry 20 min later waits in the due list);
//! 3. the third endpoint is mended and resumed (held deliveries go back on the queue);
//! 4. the scheduler runs 21 min ahead and hands the due retries over: they fail for good;
//! 5. the fourth endpoint is mended; one failed delivery is retried by hand, the others
//!    by a recovery.
//!
//! Then, with faults off: every accepted (event, subscribed endpoint) has exactly one
//! delivery, each in a final state; no delivery records an attempt the receiver did not
//! get (attempts against POSTs by `webhook-id`); the queue is empty. Violations of every
//! seed are collected and reported together, with their seed (a seed replays its faults:
//! `testkit::capacity::faults`). `AVW_FAULT_SEEDS=1-40` runs other seeds.

use crate::capacity::meter::{self, Metered, Rig};
use crate::common::{ADMIN_KEY, Answer, FIXTURE_ENDPOINT_ID, PUBLISHER_KEY, call, fixture_request};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageSystemAttributeName, QueueAttributeName,
};
use serde_json::{Value, json};
use shared::adapters::dynamo::DynamoStore;
use shared::domain::time::minute_of;
use shared::domain::{ApiKey, Delivery, DeliveryStatus, OrgSlug, RetryPolicy, Role, now};
use shared::pipeline::{EndpointLifecycle, Sender, SenderSettings, scheduler};
use shared::ports::{DeliveryStore, EndpointStore, KeyStore, Schedule};
use shared::wiring::sqs_batch::handle_sqs_batch;
use shared::wiring::{self, Function, Services};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::capacity::{CapacityMeter, FaultPlan, Service, Tally};
use testkit::{Behaviour, HttpsReceiver, Reply};

/// The seeds CI runs: in each, one publish enqueue fails all three of the SDK's attempts,
/// at least one of them after SQS took the jobs (148: the first enqueue, 166: the
/// eighth; found with `FaultPlan::fault_of`). About one seed in thirty does that with
/// this many events (see DESIGN.md, "Fault injection").
const SEEDS: [u64; 2] = [148, 166];
const SHARE: f64 = 0.10;
const AFTER_SHARE: f64 = 0.5;
/// Events of the common type (to three endpoints) per seed, and of the rare one.
const EVENTS: usize = 24;
const RARE_EVENTS: usize = 2;
/// How often a client sends one request before giving up (a 409 waits up to 5 s).
const TRIES: u32 = 40;
const CONCURRENT_PUBLISHES: usize = 6;
const ORG: &str = "acme";
const COMMON: &str = "alert.fired";
const RARE: &str = "alert.rare";

/// The receiver's endpoints: two flaky, one down until phase 3, one down until phase 5.
const FLAKY: [usize; 2] = [0, 1];
const BREAKER: usize = 2;
const DUE: usize = 3;

/// What one seed saw.
#[derive(Debug, Default)]
struct Report {
    seed: u64,
    dynamo: Tally,
    sqs: Tally,
    /// Publish enqueues whose every SDK attempt failed, one at least after SQS took it.
    enqueues_lost_after_applied: u64,
    deliveries: usize,
    posts: usize,
    /// POSTs beyond the attempts their delivery records (at-least-once).
    duplicate_posts: usize,
    publish_retries: u32,
    longest_publish: Duration,
    violations: Vec<String>,
}

/// How the receiver answers, per endpoint path.
struct Receiver {
    down: [AtomicBool; 4],
    seen: Mutex<HashSet<String>>,
}

impl Receiver {
    fn behaviour(self: &Arc<Self>) -> Behaviour {
        let this = self.clone();
        Behaviour::from_fn(move |request| {
            let endpoint = request
                .path
                .strip_prefix("/hook/")
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0);
            let id = request.header("webhook-id").unwrap_or("").to_owned();
            if this
                .down
                .get(endpoint)
                .is_some_and(|d| d.load(Ordering::SeqCst))
            {
                return Reply::status(500);
            }
            let first = this
                .seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.clone());
            // A quarter of the flaky endpoints' deliveries fail their first POST.
            let unlucky = id.bytes().map(u32::from).sum::<u32>() % 4 == 0;
            if FLAKY.contains(&endpoint) && first && unlucky {
                Reply::status(500)
            } else {
                Reply::ok()
            }
        })
    }
}

/// Sends the request `make` builds until it is answered with neither a 5xx nor a
/// `409 publish_in_progress`, at most [`TRIES`] times, as a client that retries those
/// does (a publish keeps its event id). The last answer and the retries it took.
async fn persist(router: &axum::Router, make: impl Fn() -> lambda_http::Request) -> (Answer, u32) {
    let mut retries = 0;
    loop {
        let answer = call(router, make()).await;
        let busy = answer.status == 409 && answer.json["error"]["code"] == "publish_in_progress";
        if !(answer.status >= 500 || busy) || retries + 1 == TRIES {
            return (answer, retries);
        }
        retries += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Plays the sender's event source mapping until the queue is empty: receive (with the
/// sender's clients, through the faults), hand the batch to the sender, delete what did
/// not fail and make what failed visible again. A failed receive or delete is left to the
/// queue's visibility timeout, as on AWS. `false` if the queue did not empty in time.
async fn drain(
    sender: &Sender,
    sqs: &aws_sdk_sqs::Client,
    direct: &aws_sdk_sqs::Client,
    url: &str,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await;
        let Ok(received) = received else { continue };
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            if queue_is_empty(direct, url).await {
                return true;
            }
            continue;
        }
        hand_over(sender, sqs, url, messages).await;
    }
    false
}

async fn hand_over(
    sender: &Sender,
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    messages: Vec<aws_sdk_sqs::types::Message>,
) {
    let mut event = SqsEvent::default();
    for m in &messages {
        let mut record = SqsMessage::default();
        record.message_id = m.message_id.clone();
        record.body = m.body.clone();
        record.receipt_handle = m.receipt_handle.clone();
        for (name, value) in m.attributes.iter().flatten() {
            record
                .attributes
                .insert(name.as_str().to_owned(), value.clone());
        }
        event.records.push(record);
    }
    let failed: HashSet<String> = handle_sqs_batch(sender, event)
        .await
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    let (mut done, mut again) = (Vec::new(), Vec::new());
    for (i, m) in messages.iter().enumerate() {
        let id = i.to_string();
        let handle = m.receipt_handle.clone();
        if failed.contains(m.message_id.as_deref().unwrap_or("")) {
            let entry = ChangeMessageVisibilityBatchRequestEntry::builder()
                .id(id)
                .set_receipt_handle(handle)
                .visibility_timeout(0)
                .build();
            again.extend(entry.ok());
        } else {
            let entry = DeleteMessageBatchRequestEntry::builder()
                .id(id)
                .set_receipt_handle(handle)
                .build();
            done.extend(entry.ok());
        }
    }
    if !done.is_empty() {
        let _ = sqs
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(done))
            .send()
            .await;
    }
    if !again.is_empty() {
        let _ = sqs
            .change_message_visibility_batch()
            .queue_url(url)
            .set_entries(Some(again))
            .send()
            .await;
    }
}

/// No message visible, in flight or delayed (asked of moto directly).
async fn queue_is_empty(direct: &aws_sdk_sqs::Client, url: &str) -> bool {
    let Ok(answer) = direct
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
    else {
        return false;
    };
    let attributes = answer.attributes.unwrap_or_default();
    [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        QueueAttributeName::ApproximateNumberOfMessagesDelayed,
    ]
    .iter()
    .all(|name| attributes.get(name).is_some_and(|v| v == "0"))
}

/// A request that must have succeeded in the end.
fn expect_2xx(violations: &mut Vec<String>, what: &str, answer: Answer) {
    if !(200..300).contains(&answer.status) {
        violations.push(format!("{what}: {} {}", answer.status, answer.json));
    }
}

/// One publish as its client saw it.
struct Published {
    event_id: String,
    event_type: &'static str,
    accepted: bool,
    /// The last answer, when it was not a 2xx.
    refused: Option<String>,
    retries: u32,
    took: Duration,
}

async fn publish_all(router: &axum::Router) -> Vec<Published> {
    let events = (0..EVENTS)
        .map(|i| (format!("evt_{i:03}"), COMMON))
        .chain((0..RARE_EVENTS).map(|i| (format!("evt_rare_{i}"), RARE)));
    let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_PUBLISHES));
    let mut tasks = tokio::task::JoinSet::new();
    for (event_id, event_type) in events {
        let (router, slots) = (router.clone(), slots.clone());
        tasks.spawn(async move {
            let _slot = slots.acquire().await.expect("semaphore");
            let body = json!({"id": event_id, "type": event_type, "data": {"n": 1}});
            let started = Instant::now();
            let (answer, retries) = persist(&router, || {
                fixture_request("events-publish.json", &[], Some(&body))
            })
            .await;
            Published {
                event_id,
                event_type,
                accepted: (200..300).contains(&answer.status),
                refused: Some(format!("{} {}", answer.status, answer.json))
                    .filter(|_| !(200..300).contains(&answer.status)),
                retries,
                took: started.elapsed(),
            }
        });
    }
    tasks.join_all().await
}

/// Every delivery of an endpoint, read from moto directly.
async fn deliveries_of(store: &DynamoStore, endpoint: &shared::domain::Endpoint) -> Vec<Delivery> {
    let (mut all, mut page) = (Vec::new(), 1);
    loop {
        let (deliveries, total) = store
            .delivery_page(endpoint, page, 100)
            .await
            .expect("read deliveries");
        let last = deliveries.is_empty();
        all.extend(deliveries);
        if last || all.len() as u64 >= total {
            return all;
        }
        page += 1;
    }
}

async fn run_seed(moto: String, seed: u64) -> Report {
    let plan = FaultPlan {
        seed,
        share: SHARE,
        after_share: AFTER_SHARE,
    };
    let proxy = CapacityMeter::with_faults(&moto, plan, false).await;
    proxy.set_faults_active(false);
    let rig = Rig::around(proxy, "faults", 5).await;
    let (name, url) = (rig.name.clone(), rig.queue_url.clone());
    let direct = DynamoStore::new(rig.dynamo.clone(), name.clone());
    let org = OrgSlug::parse(ORG).expect("slug");
    for (key, role) in [(ADMIN_KEY, Role::Admin), (PUBLISHER_KEY, Role::Publisher)] {
        let mut seeded = ApiKey::new(key, &org, role, now());
        seeded.last_used_at = Some(now());
        direct.insert_key(&seeded).await.expect("seed key");
    }
    let through = |f| Metered::start(&rig.meter, f, &name, &url);
    let endpoints = {
        let f = through(Function::EndpointsApi).await;
        let mut services = Services::new(f.store.clone(), f.queue.clone());
        // The resume's second pass waits for attempts begun before it: here they end
        // within a second, so it need not wait 90 s (nor the drain for it).
        services.endpoints.lifecycle = Arc::new(EndpointLifecycle {
            endpoints: f.store.clone(),
            queue: f.queue.clone(),
            resume_recheck: Duration::from_secs(2),
        });
        services.router()
    };
    let (deliveries, publishing, sending, scheduling) = (
        through(Function::DeliveriesApi).await.router(),
        through(Function::PublishApi).await.router(),
        through(Function::Sender).await,
        through(Function::Scheduler).await,
    );
    let state = Arc::new(Receiver {
        down: [false, false, true, true].map(AtomicBool::new),
        seen: Mutex::new(HashSet::new()),
    });
    let receiver = HttpsReceiver::start(state.behaviour()).await;
    let certs = std::env::temp_dir().join(format!("avw-{name}"));
    std::fs::create_dir_all(&certs).expect("temp dir");
    let sender = wiring::sender(
        sending.store.clone(),
        sending.queue.clone(),
        Arc::new(meter::trusting(&receiver, &certs)),
        SenderSettings {
            // Two retries the queue delays, then one 20 min later: the due list's.
            retry: RetryPolicy {
                delays: vec![
                    Duration::from_secs(1),
                    Duration::from_secs(1),
                    Duration::from_secs(1200),
                ],
                jitter: 0.0,
            },
            // The down endpoint trips it (24 failures); the rare one's do not: four
            // attempts of two deliveries, and an attempt or two made again under faults.
            breaker_threshold: 16,
            user_agent: wiring::user_agent(),
            endpoint_max_in_flight: 10,
        },
    );
    let mut ids = Vec::new();
    for n in 0..4 {
        let types = if n == DUE { [RARE] } else { [COMMON] };
        let body = json!({"url": receiver.url(&format!("/hook/{n}")), "event_types": types});
        let answer = call(
            &endpoints,
            fixture_request("endpoints-create.json", &[], Some(&body)),
        )
        .await;
        assert_eq!(answer.status, 201, "create endpoint: {}", answer.json);
        ids.push(answer.json["id"].as_str().expect("endpoint id").to_owned());
    }
    // The scheduler's mark starts at this minute, so the later run catches up from here.
    scheduler::run(scheduling.store.as_ref(), scheduling.queue.as_ref(), now())
        .await
        .expect("scheduler");
    let started = now();
    let mut report = Report {
        seed,
        ..Report::default()
    };
    let mut violations = Vec::new();
    let on = |id: &str| vec![(FIXTURE_ENDPOINT_ID, id.to_owned())];
    let ask = |router: &axum::Router,
               fixture: &'static str,
               ids: Vec<(&'static str, String)>,
               body: Option<Value>| {
        let router = router.clone();
        async move {
            let ids: Vec<(&str, &str)> = ids.iter().map(|(a, b)| (*a, b.as_str())).collect();
            persist(&router, || fixture_request(fixture, &ids, body.as_ref()))
                .await
                .0
        }
    };

    rig.meter.set_faults_active(true);
    // 1. Publish, rotating a secret meanwhile.
    let (published, rotated) = tokio::join!(
        publish_all(&publishing),
        ask(
            &endpoints,
            "endpoints-rotate-secret.json",
            on(&ids[0]),
            None
        )
    );
    expect_2xx(&mut violations, "rotate the secret", rotated);
    let sqs = &sending.sqs;
    let drained = || drain(&sender, sqs, &rig.sqs, &url);
    // 2. Deliver.
    let mut queue_emptied = drained().await;
    // 3. Mend the breaker's endpoint and resume it. A resume also queues a recheck a
    // little later (`lifecycle`): the drain waits for it.
    state.down[BREAKER].store(false, Ordering::SeqCst);
    let resume = json!({"is_active": true});
    let answer = ask(
        &endpoints,
        "endpoints-update.json",
        on(&ids[BREAKER]),
        Some(resume),
    )
    .await;
    expect_2xx(&mut violations, "resume", answer);
    queue_emptied &= drained().await;
    // 4. The scheduler 21 min ahead: the due retries are handed over, and fail. It runs
    // as its timer does, again until its mark has caught up: a run stops early when its
    // mark's write is refused (its own, applied and retried by the SDK, or another
    // run's), and a failed run is repeated.
    let at = now() + chrono::Duration::minutes(21);
    let mut caught_up = false;
    for _ in 0..TRIES {
        let _ = scheduler::run(scheduling.store.as_ref(), scheduling.queue.as_ref(), at).await;
        if let Ok(mark) = scheduling.store.scheduled_through().await
            && mark == Some(minute_of(at))
        {
            caught_up = true;
            break;
        }
    }
    if !caught_up {
        violations.push("the scheduler did not catch up".to_owned());
    }
    queue_emptied &= drained().await;
    // 5. Mend the rare endpoint: a manual retry, then a recovery for the rest.
    state.down[DUE].store(false, Ordering::SeqCst);
    rig.meter.set_faults_active(false);
    let endpoint = |id: &str| direct.get_endpoint(&org, id.parse().expect("uuid"));
    let due_endpoint = endpoint(&ids[DUE]).await.expect("read").expect("endpoint");
    let failed: Vec<Delivery> = deliveries_of(&direct, &due_endpoint)
        .await
        .into_iter()
        .filter(|d| d.status == DeliveryStatus::Failed)
        .collect();
    rig.meter.set_faults_active(true);
    if let Some(first) = failed.first() {
        let retry = vec![
            (FIXTURE_ENDPOINT_ID, ids[DUE].clone()),
            ("01a21c04-b400-7000-8000-040000000001", first.id.to_string()),
        ];
        let answer = ask(&deliveries, "deliveries-retry.json", retry, None).await;
        expect_2xx(&mut violations, "manual retry", answer);
        queue_emptied &= drained().await;
    }
    let since = json!({"since": shared::domain::time::format(&started)});
    let answer = ask(
        &deliveries,
        "endpoints-recover.json",
        on(&ids[DUE]),
        Some(since),
    )
    .await;
    expect_2xx(&mut violations, "recover", answer);
    queue_emptied &= drained().await;
    rig.meter.set_faults_active(false);
    if !queue_emptied || !queue_is_empty(&rig.sqs, &url).await {
        violations.push("the queue did not drain".to_owned());
    }
    if failed.is_empty() {
        violations.push("no delivery failed after the scheduler's hand-off".to_owned());
    }

    // The checks, on moto directly.
    let posts = receiver.requests();
    let mut posts_by_id: HashMap<String, usize> = HashMap::new();
    for post in &posts {
        *posts_by_id
            .entry(post.header("webhook-id").unwrap_or("").to_owned())
            .or_default() += 1;
    }
    let mut seen_posts = 0;
    for (n, id) in ids.iter().enumerate() {
        let endpoint = endpoint(id).await.expect("read").expect("endpoint");
        let stored = deliveries_of(&direct, &endpoint).await;
        report.deliveries += stored.len();
        let mut by_event: BTreeMap<&str, Vec<&Delivery>> = BTreeMap::new();
        for d in &stored {
            by_event.entry(&d.event_id).or_default().push(d);
            let got = posts_by_id.get(&d.id.to_string()).copied().unwrap_or(0);
            seen_posts += got;
            report.duplicate_posts += got.saturating_sub(d.attempts.len());
            if d.attempts.len() > got {
                violations.push(format!(
                    "delivery {} records {} attempts, the receiver got {got} POSTs",
                    d.id,
                    d.attempts.len()
                ));
            }
            if !matches!(d.status, DeliveryStatus::Succeeded | DeliveryStatus::Failed) {
                violations.push(format!(
                    "delivery {} of {} left {} with an empty queue",
                    d.id,
                    d.event_id,
                    d.status.as_str()
                ));
            }
        }
        let subscribed = if n == DUE { RARE } else { COMMON };
        for p in published
            .iter()
            .filter(|p| p.accepted && p.event_type == subscribed)
        {
            match by_event.get(p.event_id.as_str()).map_or(0, Vec::len) {
                1 => {}
                0 => violations.push(format!(
                    "{} accepted, no delivery to endpoint {n}",
                    p.event_id
                )),
                more => {
                    let seqs: Vec<String> = by_event[p.event_id.as_str()]
                        .iter()
                        .map(|d| d.id.to_string())
                        .collect();
                    violations.push(format!(
                        "{} has {more} deliveries to endpoint {n}: {}",
                        p.event_id,
                        seqs.join(", ")
                    ));
                }
            }
        }
    }
    if seen_posts != posts.len() {
        violations.push(format!(
            "{} POSTs carry no stored delivery's id",
            posts.len() - seen_posts
        ));
    }
    for p in published.iter().filter(|p| !p.accepted) {
        violations.push(format!(
            "{} not accepted after {} retries: {}",
            p.event_id,
            p.retries,
            p.refused.as_deref().unwrap_or("")
        ));
    }

    let injected = rig.meter.injected();
    report.dynamo = injected.service(Service::DynamoDb);
    report.sqs = injected.service(Service::Sqs);
    report.enqueues_lost_after_applied = injected
        .exhausted
        .get("publish-api SQS.SendMessageBatch")
        .map_or(0, |t| t.after);
    report.posts = posts.len();
    report.publish_retries = published.iter().map(|p| p.retries).sum();
    report.longest_publish = published.iter().map(|p| p.took).max().unwrap_or_default();
    report.violations = violations
        .into_iter()
        .map(|v| format!("seed {seed}: {v}"))
        .collect();
    rig.remove().await;
    let _ = std::fs::remove_dir_all(&certs);
    report
}

/// `1-40` or `1,5,9`; [`SEEDS`] without the variable.
fn seeds() -> Vec<u64> {
    let Ok(spec) = std::env::var("AVW_FAULT_SEEDS") else {
        return SEEDS.to_vec();
    };
    if let Some((a, b)) = spec.split_once('-') {
        let (a, b) = (
            a.trim().parse().expect("seed"),
            b.trim().parse().expect("seed"),
        );
        return (a..=b).collect();
    }
    spec.split(',')
        .map(|s| s.trim().parse().expect("seed"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_accepted_is_lost_or_doubled_when_requests_fail() {
    let moto =
        std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL: run through scripts/test.sh");
    let mut runs = tokio::task::JoinSet::new();
    for seed in seeds() {
        runs.spawn(run_seed(moto.clone(), seed));
    }
    let mut reports = runs.join_all().await;
    reports.sort_by_key(|r| r.seed);
    println!(
        "seed | DynamoDB faults before/after | SQS faults before/after | publish enqueues lost after applied | deliveries | POSTs | duplicate POSTs | publish retries | longest publish"
    );
    for r in &reports {
        println!(
            "{} | {}/{} | {}/{} | {} | {} | {} | {} | {} | {:.1} s",
            r.seed,
            r.dynamo.before,
            r.dynamo.after,
            r.sqs.before,
            r.sqs.after,
            r.enqueues_lost_after_applied,
            r.deliveries,
            r.posts,
            r.duplicate_posts,
            r.publish_retries,
            r.longest_publish.as_secs_f64()
        );
    }
    assert!(
        reports
            .iter()
            .all(|r| r.dynamo.after > 0 && r.sqs.after > 0),
        "every seed injects faults of both kinds into both services"
    );
    // What CI's seeds were chosen for; other seeds (AVW_FAULT_SEEDS) need not have it.
    assert!(
        std::env::var_os("AVW_FAULT_SEEDS").is_some()
            || reports.iter().any(|r| r.enqueues_lost_after_applied > 0),
        "the seeds include a publish enqueue the SDK gave up on after SQS took it"
    );
    let violations: Vec<&String> = reports.iter().flat_map(|r| &r.violations).collect();
    assert!(violations.is_empty(), "{violations:#?}");
}
