//! Publishing under faults, on both backends: the real `Publisher` behind the real
//! publish route, its queue or event store wrapped so that a chosen request fails after
//! it was applied (AWS's "the request may or may not have been processed") or is sent
//! twice (the SDK's own retry). Whatever fails, each (event, endpoint) ends with exactly
//! one delivery, and the client's next retry with the same id is accepted at once.

use crate::common::*;
use crate::pipeline::{Harness, Options};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;
use shared::domain::{Event, Job, OrgSlug, now};
use shared::pipeline::Publisher;
use shared::ports::{EventStore, JobQueue, QueueError, StoreError, StoreResult};
use shared::wiring::Services;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use testkit::{Behaviour, Reply};
use uuid::Uuid;

/// What `Harness::publish` sends, so every retry below is the same event.
fn body(id: &str) -> String {
    json!({"id": id, "type": "alert.fired", "data": {"n": 1, "text": "héllo"}}).to_string()
}

/// A publish of `id` through `router`, as the client sends it.
async fn publish(router: &axum::Router, id: &str) -> Answer {
    send(router, "events-publish.json", |e| set_body(e, &body(id))).await
}

/// A fault that is on until the test turns it off.
#[derive(Clone, Default)]
struct Switch(Arc<AtomicBool>);

impl Switch {
    fn on() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }
    fn off(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
    fn is_on(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The harness's queue, whose enqueue applies the send and then reports it failed while
/// the switch is on.
struct AppliedButFailedQueue {
    inner: Arc<dyn JobQueue>,
    fault: Switch,
}

#[async_trait]
impl JobQueue for AppliedButFailedQueue {
    fn max_delay(&self) -> Duration {
        self.inner.max_delay()
    }

    async fn enqueue(&self, jobs: Vec<(Job, Duration)>) -> Result<(), QueueError> {
        self.inner.enqueue(jobs).await?;
        if self.fault.is_on() {
            return Err(QueueError("injected: sent, then reported failed".into()));
        }
        Ok(())
    }
}

/// How the event store's chosen write goes wrong while the switch is on.
#[derive(Clone, Copy)]
enum EventFault {
    /// Storing the event is applied, then reported failed.
    InsertAppliedButFailed,
    /// Each fan-out hold write is applied, then reported failed.
    HoldAppliedButFailed,
    /// Each fan-out hold write is sent twice (the SDK retrying a request whose answer
    /// was lost); the second answer is the one reported.
    HoldSentTwice,
    /// The event's write applied, its answer lost, sent again by the SDK: refused by its
    /// own condition, it hands back the event just stored.
    InsertSentTwice,
}

struct FaultyEvents<S> {
    inner: Arc<S>,
    fault: EventFault,
    on: Switch,
}

#[async_trait]
impl<S: Store> EventStore for FaultyEvents<S> {
    async fn insert_event(&self, event: &Event) -> StoreResult<Option<Event>> {
        let stored = self.inner.insert_event(event).await?;
        if !self.on.is_on() {
            return Ok(stored);
        }
        match self.fault {
            EventFault::InsertAppliedButFailed => Err(StoreError::Backend(
                "injected: stored, then reported failed".into(),
            )),
            EventFault::InsertSentTwice => self.inner.insert_event(event).await,
            _ => Ok(stored),
        }
    }

    async fn get_event(&self, org: &OrgSlug, id: &str) -> StoreResult<Option<Event>> {
        self.inner.get_event(org, id).await
    }

    async fn take_over_fan_out(
        &self,
        org: &OrgSlug,
        id: &str,
        seen: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
        holder: Uuid,
    ) -> StoreResult<bool> {
        let taken = self
            .inner
            .take_over_fan_out(org, id, seen, until, holder)
            .await?;
        if !self.on.is_on() {
            return Ok(taken);
        }
        match self.fault {
            EventFault::InsertAppliedButFailed | EventFault::InsertSentTwice => Ok(taken),
            EventFault::HoldAppliedButFailed => Err(StoreError::Backend(
                "injected: hold written, then reported failed".into(),
            )),
            EventFault::HoldSentTwice => {
                self.inner
                    .take_over_fan_out(org, id, seen, until, holder)
                    .await
            }
        }
    }
}

/// The API's routes over `store` and the harness's queue, with the publish route's
/// `Publisher` on `events` and `queue` instead.
fn router_with(
    store: &Arc<impl Store>,
    h_queue: Arc<dyn JobQueue>,
    events: Arc<dyn EventStore>,
    queue: Arc<dyn JobQueue>,
) -> axum::Router {
    let mut services = Services::new(store.clone(), h_queue);
    services.publish.publisher = Arc::new(Publisher {
        endpoints: store.clone(),
        deliveries: store.clone(),
        events,
        queue,
    });
    services.router()
}

/// Hand every job out until the queue stays empty; then each endpoint has exactly one
/// delivery, succeeded after one attempt, and the receiver saw one webhook-id per
/// endpoint (a repeated job may post again, with the same id).
async fn drain_and_check_one_each<S: Store>(h: &mut Harness<S>, endpoints: &[String]) {
    while let Some(job) = h.next_job(Duration::from_millis(300)).await {
        h.sender.handle(job, false).await.expect("handled");
    }
    for id in endpoints {
        let list = h.deliveries_of(id).await;
        assert_eq!(list["total"], 1, "one delivery for endpoint {id}: {list}");
        assert_eq!(list["deliveries"][0]["status"], "succeeded", "{list}");
        assert_eq!(list["deliveries"][0]["attempt_count"], 1, "{list}");
    }
    let ids: BTreeSet<_> = h
        .receiver
        .requests()
        .iter()
        .map(|r| r.header("webhook-id").map(str::to_owned))
        .collect();
    assert_eq!(
        ids.len(),
        endpoints.len(),
        "one webhook-id per endpoint: {ids:?}"
    );
}

async fn harness_with_endpoints<S: Store>(store: Arc<S>, n: usize) -> (Harness<S>, Vec<String>) {
    let h = Harness::start(store, Behaviour::always(Reply::ok()), Options::default()).await;
    let mut endpoints = Vec::new();
    for _ in 0..n {
        endpoints.push(h.endpoint(&["alert.fired"]).await.0);
    }
    (h, endpoints)
}

/// The cause of issue 17's duplicate: the first attempts' `SendMessageBatch` is applied
/// but reported failed, the publish answers 500, and the client's retry must neither
/// wait out a hold nor number the targets again.
async fn an_enqueue_applied_but_reported_failed_makes_one_delivery_each(store: Arc<impl Store>) {
    let (mut h, endpoints) = harness_with_endpoints(store.clone(), 2).await;
    let fault = Switch::on();
    let queue = Arc::new(AppliedButFailedQueue {
        inner: h.queue.clone(),
        fault: fault.clone(),
    });
    let router = router_with(&store, h.queue.clone(), store.clone(), queue);
    let failed = publish(&router, "evt_sent_unsure").await;
    assert_error(&failed, 500, "internal_error");
    fault.off();

    let again = publish(&router, "evt_sent_unsure").await;
    assert_eq!(
        again.status, 202,
        "the retry is accepted at once: {}",
        again.json
    );
    assert_eq!(again.json["deliveries"], 2);
    drain_and_check_one_each(&mut h, &endpoints).await;
    // Complete: one more repeat answers the same and sends nothing new.
    assert_eq!(publish(&router, "evt_sent_unsure").await.json, again.json);
    drain_and_check_one_each(&mut h, &endpoints).await;
}

/// An event whose fan-out was left unfinished, its hold passed: as a publish leaves it
/// when it dies before numbering anything.
async fn unfinished_event(store: &impl Store, h_endpoints: &[String], id: &str) {
    let created_at = now() - chrono::Duration::minutes(1);
    let mut targets = Vec::new();
    for e in h_endpoints {
        let endpoint = store
            .get_endpoint(&acme(), e.parse().expect("uuid"))
            .await
            .expect("get")
            .expect("there");
        targets.push(target_of(&endpoint, endpoint.delivery_seq));
    }
    let payload = json!({"id": id, "type": "alert.fired", "created_at": "2026-01-01T00:00:00.000Z",
        "org": "acme", "data": {"n": 1, "text": "héllo"}})
    .to_string();
    let event = Event {
        org: acme(),
        id: id.into(),
        event_type: "alert.fired".into(),
        created_at,
        payload,
        targets,
        fan_out_until: Some(created_at + chrono::Duration::seconds(30)),
        fan_out_holder: None,
    };
    assert_eq!(store.insert_event(&event).await.expect("insert"), None);
}

/// A publish that meets `fault` answers 500; with the fault gone, the same request
/// proceeds at once (the id is not locked for the hold) and each endpoint gets one
/// delivery. `unfinished`: the event is stored already, its fan-out never done.
async fn fails_once_then_proceeds(
    store: Arc<impl Store>,
    fault: EventFault,
    id: &str,
    unfinished: bool,
) {
    let on = Switch::on();
    let (mut h, endpoints, router) = faulty_events(store, fault, &on, id, unfinished).await;
    let first = publish(&router, id).await;
    assert_error(&first, 500, "internal_error");
    on.off();
    let again = publish(&router, id).await;
    assert_eq!(again.status, 202, "not locked: {}", again.json);
    drain_and_check_one_each(&mut h, &endpoints).await;
}

/// A publish that meets `fault` is accepted all the same, and each endpoint gets one
/// delivery. `unfinished`: the event is stored already, its fan-out never done.
async fn proceeds_despite(store: Arc<impl Store>, fault: EventFault, id: &str, unfinished: bool) {
    let on = Switch::on();
    let (mut h, endpoints, router) = faulty_events(store, fault, &on, id, unfinished).await;
    let answer = publish(&router, id).await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    drain_and_check_one_each(&mut h, &endpoints).await;
}

/// Two endpoints, and the publish route over an event store that injects `fault`
/// while `on` is; with `unfinished`, event `id` is stored, its fan-out never done.
async fn faulty_events<S: Store>(
    store: Arc<S>,
    fault: EventFault,
    on: &Switch,
    id: &str,
    unfinished: bool,
) -> (Harness<S>, Vec<String>, axum::Router) {
    let (h, endpoints) = harness_with_endpoints(store.clone(), 2).await;
    if unfinished {
        unfinished_event(store.as_ref(), &endpoints, id).await;
    }
    let events = Arc::new(FaultyEvents {
        inner: store.clone(),
        fault,
        on: on.clone(),
    });
    let router = router_with(&store, h.queue.clone(), events, h.queue.clone());
    (h, endpoints, router)
}

/// A takeover whose hold write is applied but reported failed must not lock the id for
/// the whole hold (issue 17's 80 s case): the next retry proceeds at once.
async fn a_takeover_applied_but_reported_failed_does_not_lock_the_id(store: Arc<impl Store>) {
    let id = "evt_taken_unsure";
    fails_once_then_proceeds(store, EventFault::HoldAppliedButFailed, id, true).await;
}

/// A takeover the SDK sent twice (the first applied, its answer lost): the second finds
/// the hold no longer as seen. The taker still holds it and finishes the fan-out.
async fn a_takeover_sent_twice_is_still_the_takers(store: Arc<impl Store>) {
    proceeds_despite(store, EventFault::HoldSentTwice, "evt_taken_twice", true).await;
}

/// Storing the event applied but reported failed: the publish answers 500 holding a
/// fan-out it never started; it gives the hold up, so the retry proceeds at once.
async fn an_event_stored_but_reported_failed_does_not_lock_the_id(store: Arc<impl Store>) {
    let id = "evt_stored_unsure";
    fails_once_then_proceeds(store, EventFault::InsertAppliedButFailed, id, false).await;
}

/// The event's write sent twice by the SDK (the first applied, its answer lost): the
/// second hands back the event this publish just stored, which must not take it for
/// another writer's and wait for its own hold (issue 17's 409 on a first request).
async fn an_event_stored_twice_is_still_the_writers(store: Arc<impl Store>) {
    proceeds_despite(
        store,
        EventFault::InsertSentTwice,
        "evt_stored_twice",
        false,
    )
    .await;
}

/// A repeat that finds a live writer still at work answers 409 with `Retry-After`: the
/// whole seconds until the writer's hold ends.
async fn in_progress_says_when_to_retry(store: Arc<impl Store>) {
    let (h, endpoints) = harness_with_endpoints(store.clone(), 1).await;
    unfinished_event(store.as_ref(), &endpoints, "evt_busy").await;
    let until = now() + chrono::Duration::seconds(20);
    let seen = store
        .get_event(&acme(), "evt_busy")
        .await
        .expect("get")
        .and_then(|e| e.fan_out_until);
    assert!(
        store
            .take_over_fan_out(&acme(), "evt_busy", seen, until, Uuid::now_v7())
            .await
            .expect("hold")
    );
    let busy = publish(&h.router, "evt_busy").await;
    assert_error(&busy, 409, "publish_in_progress");
    let after: u64 = busy
        .headers
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("whole seconds");
    assert!((10..=20).contains(&after), "{after}");
}

on_both_backends!(
    an_enqueue_applied_but_reported_failed_makes_one_delivery_each,
    a_takeover_applied_but_reported_failed_does_not_lock_the_id,
    a_takeover_sent_twice_is_still_the_takers,
    an_event_stored_but_reported_failed_does_not_lock_the_id,
    an_event_stored_twice_is_still_the_writers,
    in_progress_says_when_to_retry,
);
