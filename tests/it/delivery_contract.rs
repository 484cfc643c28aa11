//! The delivery pipeline's storage ports, one contract on both backends: sequence
//! numbers and pages, claims and leases, recording, pausing, the due index, purging and
//! the circuit breaker's counter.

use crate::common::succeeded_attempt;
use shared::domain::{
    Attempt, AttemptError, AttemptErrorKind, AttemptOutcome, Delivery, DeliveryStatus, Endpoint,
    Event, Lease, NewEndpoint, Trigger, now,
};
use shared::ports::{ClaimFor, StoreError};
use shared::wiring::Store;
use std::sync::Arc;
use uuid::Uuid;

async fn endpoint(store: &impl Store) -> Endpoint {
    let e = Endpoint::create(
        "acme",
        NewEndpoint {
            url: "https://example.com/hook".into(),
            description: String::new(),
            event_types: vec!["a.b".into()],
        },
        now(),
    );
    store.insert_endpoint(&e, 100).await.expect("endpoint");
    e
}

fn event(id: &str) -> Event {
    Event {
        org: "acme".into(),
        id: id.into(),
        event_type: "a.b".into(),
        created_at: now(),
        payload: format!(r#"{{"id":"{id}","type":"a.b"}}"#),
        targets: vec![],
        fanned_out: true,
        fan_out_until: None,
    }
}

/// A new delivery to `e`, stored with the next sequence number.
async fn delivery(store: &impl Store, e: &Endpoint, active: bool) -> Delivery {
    let seq = store
        .next_delivery_seq(&e.org, e.id)
        .await
        .expect("seq")
        .expect("endpoint exists");
    // One event per delivery: a delivery's id derives from its event and endpoint.
    let d = Delivery::new(&event(&format!("evt_{seq}")), e.id, seq, active);
    store.insert_delivery(&d).await.expect("insert");
    d
}

fn lease(seconds: i64) -> Lease {
    Lease {
        id: Uuid::now_v7(),
        until: now() + chrono::Duration::seconds(seconds),
    }
}

/// Claims delivery `id` for `what` under a fresh 60 s lease, which the store must grant;
/// returns the claimed delivery and the lease.
async fn claim(store: &impl Store, id: Uuid, what: ClaimFor) -> (Delivery, Lease) {
    let l = lease(60);
    let claimed = store
        .claim(id, what, l, now())
        .await
        .expect("claim")
        .expect("claimed");
    (claimed, l)
}

/// Tries to claim delivery `id` for `what` under a fresh 60 s lease: the claimed delivery,
/// or `None` if the store refuses.
async fn try_claim(store: &impl Store, id: Uuid, what: ClaimFor) -> Option<Delivery> {
    store
        .claim(id, what, lease(60), now())
        .await
        .expect("claim")
}

/// Requests a manual retry of delivery `id`, which the store must accept; returns the
/// request's id.
async fn request_retry(store: &impl Store, id: Uuid) -> Uuid {
    let request = Uuid::now_v7();
    assert!(
        store
            .request_retry(id, request, now())
            .await
            .expect("retry"),
        "a retry of an existing delivery is accepted"
    );
    request
}

/// Delivery `id` as stored now (it must exist).
async fn stored_delivery(store: &impl Store, id: Uuid) -> Delivery {
    store.get_delivery(id).await.expect("get").expect("there")
}

fn failed_attempt(n: u32) -> Attempt {
    Attempt {
        attempt_number: n,
        trigger: Trigger::Automatic,
        started_at: now(),
        duration_ms: 12,
        status_code: Some(500),
        response_body: "oops".into(),
        error: Some(AttemptError::new(AttemptErrorKind::HttpStatus, "HTTP 500")),
        succeeded: false,
    }
}

async fn events_are_stored_once(store: Arc<impl Store>) {
    let e = event("evt_1");
    store.insert_event(&e).await.expect("insert");
    assert!(matches!(
        store.insert_event(&e).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store.get_event("acme", "evt_1").await.expect("get"),
        Some(e)
    );
    assert_eq!(store.get_event("other", "evt_1").await.expect("get"), None);
}

/// An unfinished fan-out changes hands only from the holder last seen, and never once
/// it is finished.
async fn fan_outs_are_taken_over_from_the_holder_seen(store: Arc<impl Store>) {
    let first = now();
    let mut e = event("evt_take");
    e.fanned_out = false;
    e.fan_out_until = Some(first);
    store.insert_event(&e).await.expect("insert");
    let stored = store.get_event("acme", "evt_take").await.expect("get");
    assert_eq!(
        stored.and_then(|e| e.fan_out_until),
        Some(first),
        "round-trips"
    );
    let mine = first + chrono::Duration::seconds(30);
    // Whether `event_id`'s fan-out, last seen held until `seen`, is now ours until `mine`.
    let take_over = async |event_id: &str, seen| {
        store
            .take_over_fan_out("acme", event_id, seen, mine)
            .await
            .expect("take")
    };
    assert!(!take_over("evt_take", None).await, "not the holder seen");
    assert!(take_over("evt_take", Some(first)).await);
    assert!(!take_over("evt_take", Some(first)).await, "only one taker");
    store
        .mark_fanned_out("acme", "evt_take")
        .await
        .expect("mark");
    assert!(!take_over("evt_take", Some(mine)).await, "finished");
    let mut legacy = event("evt_legacy");
    legacy.fanned_out = false;
    store.insert_event(&legacy).await.expect("insert");
    assert!(take_over("evt_legacy", None).await, "no holder recorded");
}

async fn pages_are_seq_ranges_newest_first(store: Arc<impl Store>) {
    let e = endpoint(store.as_ref()).await;
    let mut made = Vec::new();
    for _ in 0..45 {
        made.push(delivery(store.as_ref(), &e, true).await);
    }
    let e = store
        .get_endpoint("acme", e.id)
        .await
        .expect("get")
        .expect("there");
    assert_eq!(e.delivery_seq, 45);
    made.reverse();
    let ids = |v: &[Delivery]| v.iter().map(|d| d.id).collect::<Vec<_>>();
    let (p1, total) = store.delivery_page(&e, 1, 20).await.expect("page 1");
    assert_eq!(total, 45);
    assert_eq!(ids(&p1), ids(&made[..20]));
    let (p3, _) = store.delivery_page(&e, 3, 20).await.expect("page 3");
    assert_eq!(ids(&p3), ids(&made[40..]));
    let (p4, total) = store.delivery_page(&e, 4, 20).await.expect("page 4");
    assert!(p4.is_empty());
    assert_eq!(total, 45);
    let (all, _) = store.delivery_page(&e, 1, 100).await.expect("all");
    assert_eq!(all, made, "every field round-trips");
    assert!(
        store
            .next_delivery_seq("acme", Uuid::now_v7())
            .await
            .expect("seq")
            .is_none()
    );
}

async fn claims_lease_and_record_exactly_once(store: Arc<impl Store>) {
    let e = endpoint(store.as_ref()).await;
    let d = delivery(store.as_ref(), &e, true).await;
    // A pending delivery is claimable.
    let (claimed, first) = claim(store.as_ref(), d.id, ClaimFor::Attempt(1)).await;
    assert_eq!(claimed.lease.map(|l| l.id), Some(first.id));
    assert!(
        try_claim(store.as_ref(), d.id, ClaimFor::Attempt(1))
            .await
            .is_none(),
        "a live lease blocks"
    );
    assert!(
        try_claim(store.as_ref(), d.id, ClaimFor::Attempt(2))
            .await
            .is_none(),
        "wrong attempt"
    );

    let later = now();
    let outcome = AttemptOutcome {
        status: DeliveryStatus::Retrying,
        next_attempt_at: Some(later + chrono::Duration::seconds(5)),
    };
    let attempt = failed_attempt(1);
    assert!(
        store
            .record_attempt(&d, Uuid::now_v7(), &attempt, &outcome, later)
            .await
            .expect("record")
            .is_none(),
        "foreign lease"
    );
    assert!(
        store
            .record_attempt(&d, first.id, &attempt, &outcome, later)
            .await
            .expect("record")
            .is_some()
    );
    assert!(
        store
            .record_attempt(&d, first.id, &attempt, &outcome, later)
            .await
            .expect("record")
            .is_none(),
        "once only"
    );
    let after = stored_delivery(store.as_ref(), d.id).await;
    assert_eq!(after.status, DeliveryStatus::Retrying);
    assert_eq!(after.attempt_count, 1);
    assert_eq!(after.last_status_code, Some(500));
    assert_eq!(after.next_attempt_at, outcome.next_attempt_at);
    assert_eq!(after.lease, None);
    assert_eq!(
        store.list_attempts(d.id).await.expect("attempts"),
        vec![attempt],
        "every field round-trips"
    );
    assert!(
        try_claim(store.as_ref(), d.id, ClaimFor::Attempt(1))
            .await
            .is_none(),
        "attempt 1 is done"
    );
    assert!(
        try_claim(store.as_ref(), d.id, ClaimFor::Attempt(2))
            .await
            .is_some()
    );
}

async fn expired_leases_can_be_taken_over(store: Arc<impl Store>) {
    let e = endpoint(store.as_ref()).await;
    let d = delivery(store.as_ref(), &e, true).await;
    let dead = lease(-1);
    store
        .claim(d.id, ClaimFor::Attempt(1), dead, now())
        .await
        .expect("claim")
        .expect("claimed");
    let live = lease(60);
    assert!(
        store
            .claim(d.id, ClaimFor::Attempt(1), live, now())
            .await
            .expect("claim")
            .is_some(),
        "expired lease is free"
    );
    let (ok, outcome) = succeeded_attempt(1);
    assert!(
        store
            .record_attempt(&d, dead.id, &ok, &outcome, now())
            .await
            .expect("record")
            .is_none(),
        "the dead sender cannot record"
    );
    assert!(
        store
            .record_attempt(&d, live.id, &ok, &outcome, now())
            .await
            .expect("record")
            .is_some()
    );
    assert_eq!(store.list_attempts(d.id).await.expect("attempts").len(), 1);
    let after = stored_delivery(store.as_ref(), d.id).await;
    assert_eq!(
        (after.status, after.next_attempt_at),
        (DeliveryStatus::Succeeded, None)
    );
    assert!(
        store
            .due_deliveries(now() + chrono::Duration::days(1), 10)
            .await
            .expect("due")
            .is_empty()
    );
}

async fn manual_retries_claim_by_request(store: Arc<impl Store>) {
    let e = endpoint(store.as_ref()).await;
    let d = delivery(store.as_ref(), &e, true).await;
    let request = request_retry(store.as_ref(), d.id).await;
    assert!(
        !store
            .request_retry(Uuid::now_v7(), request, now())
            .await
            .expect("unknown")
    );
    assert!(
        try_claim(store.as_ref(), d.id, ClaimFor::Manual(Uuid::now_v7()))
            .await
            .is_none()
    );
    let (claimed, l) = claim(store.as_ref(), d.id, ClaimFor::Manual(request)).await;
    assert_eq!(claimed.manual_retry, Some(request), "open until recorded");
    let mut a = failed_attempt(1);
    a.trigger = Trigger::Manual;
    let outcome = AttemptOutcome {
        status: DeliveryStatus::Failed,
        next_attempt_at: None,
    };
    let recorded = store
        .record_attempt(&claimed, l.id, &a, &outcome, now())
        .await
        .expect("record")
        .expect("recorded");
    assert_eq!(recorded.manual_retry, None);
    let after = stored_delivery(store.as_ref(), d.id).await;
    assert_eq!(after.manual_retry, None, "the request is used up");
    assert!(
        try_claim(store.as_ref(), d.id, ClaimFor::Manual(request))
            .await
            .is_none()
    );
}

/// A retry request leaves the recorded outcome alone until its attempt is made, and one
/// made while another attempt is in flight stays open (and due now) when that attempt
/// is recorded.
async fn retry_requests_keep_the_outcome_and_survive_an_attempt(store: Arc<impl Store>) {
    let e = endpoint(store.as_ref()).await;
    let d = delivery(store.as_ref(), &e, true).await;
    let (claimed, l) = claim(store.as_ref(), d.id, ClaimFor::Attempt(1)).await;
    let request = request_retry(store.as_ref(), d.id).await;
    let (ok, done) = succeeded_attempt(1);
    let at = now();
    let recorded = store
        .record_attempt(&claimed, l.id, &ok, &done, at)
        .await
        .expect("record")
        .expect("recorded");
    assert_eq!(recorded.manual_retry, Some(request), "still open");
    let stored = stored_delivery(store.as_ref(), d.id).await;
    assert_eq!(
        (stored.status, stored.manual_retry, stored.next_attempt_at),
        (DeliveryStatus::Succeeded, Some(request), Some(at))
    );
    let due = store.due_deliveries(now(), 10).await.expect("due");
    assert_eq!(
        due.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![d.id],
        "due for the open request"
    );
    assert!(
        store.touch_due(d.id, at, now()).await.expect("touch"),
        "the sweep can re-queue it"
    );

    // Another request on the finished delivery: the outcome stays until it happens.
    let again = request_retry(store.as_ref(), d.id).await;
    let stored = stored_delivery(store.as_ref(), d.id).await;
    assert_eq!(
        (stored.status, stored.updated_at, stored.manual_retry),
        (DeliveryStatus::Succeeded, recorded.updated_at, Some(again))
    );
    assert!(
        try_claim(store.as_ref(), d.id, ClaimFor::Manual(request))
            .await
            .is_none(),
        "the older request is superseded"
    );
}

async fn paused_deliveries_wait_for_resume(store: Arc<impl Store>) {
    let e = endpoint(store.as_ref()).await;
    let born_paused = delivery(store.as_ref(), &e, false).await;
    assert_eq!(born_paused.status, DeliveryStatus::Paused);
    let d = delivery(store.as_ref(), &e, true).await;
    let (claimed, l) = claim(store.as_ref(), d.id, ClaimFor::Attempt(1)).await;
    assert!(store.hold(&claimed, l.id, now()).await.expect("hold"));
    let mut paused: Vec<Uuid> = store
        .paused_deliveries(e.id, 10)
        .await
        .expect("paused")
        .iter()
        .map(|d| d.id)
        .collect();
    paused.sort();
    let mut expected = vec![born_paused.id, d.id];
    expected.sort();
    assert_eq!(paused, expected);
    assert!(
        store
            .due_deliveries(now() + chrono::Duration::days(1), 10)
            .await
            .expect("due")
            .is_empty()
    );
    let held = stored_delivery(store.as_ref(), d.id).await;
    assert!(held.held);
    assert_eq!(held.status, DeliveryStatus::Paused);
    let at = now();
    assert!(store.resume_delivery(&held, at).await.expect("resume"));
    assert!(
        !store.resume_delivery(&held, at).await.expect("again"),
        "only held ones resume"
    );
    let resumed = stored_delivery(store.as_ref(), d.id).await;
    assert_eq!(
        (
            resumed.status,
            resumed.next_attempt_at,
            resumed.lease,
            resumed.held
        ),
        (DeliveryStatus::Pending, Some(at), None, false)
    );
    assert_eq!(
        store
            .paused_deliveries(e.id, 10)
            .await
            .expect("paused")
            .len(),
        1
    );
}

/// A manual retry of a finished delivery whose endpoint is inactive waits for the resume
/// without turning the delivery `paused`, and is still a manual retry afterwards.
async fn a_held_manual_retry_keeps_outcome_and_request(store: Arc<impl Store>) {
    let e = endpoint(store.as_ref()).await;
    let d = delivery(store.as_ref(), &e, true).await;
    let (claimed, l) = claim(store.as_ref(), d.id, ClaimFor::Attempt(1)).await;
    let (ok, done) = succeeded_attempt(1);
    store
        .record_attempt(&claimed, l.id, &ok, &done, now())
        .await
        .expect("record")
        .expect("recorded");
    let request = request_retry(store.as_ref(), d.id).await;
    let (claimed, l) = claim(store.as_ref(), d.id, ClaimFor::Manual(request)).await;
    assert!(store.hold(&claimed, l.id, now()).await.expect("hold"));
    let held = stored_delivery(store.as_ref(), d.id).await;
    assert_eq!(
        (held.status, held.held, held.manual_retry),
        (DeliveryStatus::Succeeded, true, Some(request))
    );
    assert_eq!(
        store.paused_deliveries(e.id, 10).await.expect("held").len(),
        1
    );
    assert!(store.resume_delivery(&held, now()).await.expect("resume"));
    let resumed = stored_delivery(store.as_ref(), d.id).await;
    assert_eq!(
        (resumed.status, resumed.held, resumed.manual_retry),
        (DeliveryStatus::Succeeded, false, Some(request))
    );
    assert_eq!(
        shared::pipeline::sender::next_job(&resumed),
        shared::domain::Job::manual(d.id, request)
    );
}

async fn the_due_index_orders_and_cuts_off(store: Arc<impl Store>) {
    let e = endpoint(store.as_ref()).await;
    let a = delivery(store.as_ref(), &e, true).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let b = delivery(store.as_ref(), &e, true).await;
    let due = store.due_deliveries(now(), 10).await.expect("due");
    assert_eq!(
        due.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![a.id, b.id]
    );
    assert_eq!(store.due_deliveries(now(), 1).await.expect("due").len(), 1);
    assert!(
        store
            .due_deliveries(a.created_at - chrono::Duration::seconds(1), 10)
            .await
            .expect("due")
            .is_empty()
    );
    let later = now() + chrono::Duration::minutes(10);
    let seen = a.next_attempt_at.expect("due");
    assert!(
        !store.touch_due(a.id, later, later).await.expect("touch"),
        "not as seen"
    );
    assert!(store.touch_due(a.id, seen, later).await.expect("touch"));
    let due = store.due_deliveries(now(), 10).await.expect("due");
    assert_eq!(due.iter().map(|d| d.id).collect::<Vec<_>>(), vec![b.id]);
    assert_eq!(
        stored_delivery(store.as_ref(), a.id).await.next_attempt_at,
        Some(later)
    );
}

async fn purges_take_attempts_too(store: Arc<impl Store>) {
    let e = endpoint(store.as_ref()).await;
    let mut ids = Vec::new();
    for _ in 0..30 {
        let d = delivery(store.as_ref(), &e, true).await;
        let (claimed, l) = claim(store.as_ref(), d.id, ClaimFor::Attempt(1)).await;
        let outcome = AttemptOutcome {
            status: DeliveryStatus::Failed,
            next_attempt_at: None,
        };
        store
            .record_attempt(&claimed, l.id, &failed_attempt(1), &outcome, now())
            .await
            .expect("record");
        ids.push(d.id);
    }
    let listed = store.endpoint_delivery_ids(e.id, 20).await.expect("ids");
    assert_eq!(listed.len(), 20);
    store.delete_deliveries(&listed).await.expect("delete");
    for id in &listed {
        assert!(store.get_delivery(*id).await.expect("get").is_none());
        assert!(store.list_attempts(*id).await.expect("attempts").is_empty());
    }
    let rest = store.endpoint_delivery_ids(e.id, 100).await.expect("ids");
    assert_eq!(rest.len(), 10);
    assert!(
        rest.iter()
            .all(|id| ids.contains(id) && !listed.contains(id))
    );
}

async fn the_failure_counter_is_atomic(store: Arc<impl Store>) {
    let e = endpoint(store.as_ref()).await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.record_failure("acme", e.id).await })
        })
        .collect();
    let mut counts = Vec::new();
    for t in tasks {
        counts.push(t.await.expect("task").expect("ok").expect("exists"));
    }
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=10).collect::<Vec<u32>>(),
        "every increment is seen once"
    );
    assert!(
        !store
            .pause_endpoint("acme", e.id, Some(11), now())
            .await
            .expect("pause"),
        "below threshold"
    );
    assert!(
        store
            .pause_endpoint("acme", e.id, Some(10), now())
            .await
            .expect("pause")
    );
    assert!(
        !store
            .pause_endpoint("acme", e.id, Some(10), now())
            .await
            .expect("pause"),
        "already paused"
    );
    let paused = store
        .get_endpoint("acme", e.id)
        .await
        .expect("get")
        .expect("there");
    assert!(!paused.is_active);
    assert_eq!(paused.consecutive_failures, 10);
    store.record_success("acme", e.id).await.expect("success");
    store
        .record_success("acme", e.id)
        .await
        .expect("success at zero is a no-op");
    store
        .record_success("acme", Uuid::now_v7())
        .await
        .expect("success of a deleted endpoint is a no-op");
    assert_eq!(
        store
            .get_endpoint("acme", e.id)
            .await
            .expect("get")
            .expect("there")
            .consecutive_failures,
        0
    );
    assert_eq!(
        store
            .record_failure("acme", Uuid::now_v7())
            .await
            .expect("gone"),
        None
    );
}

on_both_backends!(
    events_are_stored_once,
    fan_outs_are_taken_over_from_the_holder_seen,
    pages_are_seq_ranges_newest_first,
    claims_lease_and_record_exactly_once,
    expired_leases_can_be_taken_over,
    manual_retries_claim_by_request,
    retry_requests_keep_the_outcome_and_survive_an_attempt,
    a_held_manual_retry_keeps_outcome_and_request,
    paused_deliveries_wait_for_resume,
    the_due_index_orders_and_cuts_off,
    purges_take_attempts_too,
    the_failure_counter_is_atomic,
);
