//! The delivery pipeline's storage ports, one contract on both backends: events stored
//! once, endpoint numbers, each endpoint's history and its pages, attempts recorded
//! exactly once, manual retry requests, held deliveries and their resume, the due list,
//! purging, and the circuit breaker's counter.

use crate::common::{acme, new_endpoint, org, take_delivery_seq, target_of};
use shared::domain::delivery::KEPT_BODY_BYTES;
use shared::domain::{
    Attempt, AttemptError, AttemptErrorKind, AttemptOutcome, Delivery, DeliveryKey, DeliveryStatus,
    Endpoint, Event, Expect, ScheduledAttempt, Target, Trigger, now,
};
use shared::domain::{DeliverySeq, EndpointNumber};
use shared::domain::{Pause, PausedBy};
use shared::ports::RetryOf;
use shared::ports::Store;
use std::sync::Arc;
use uuid::Uuid;

/// A new endpoint of `acme` (subscribed to `a.b`), stored.
pub(crate) async fn endpoint(store: &impl Store) -> Endpoint {
    new_endpoint(store, "https://example.com/hook", "a.b").await
}

fn event(id: &str) -> Event {
    Event {
        org: acme(),
        id: id.into(),
        event_type: "a.b".into(),
        created_at: now(),
        payload: format!(r#"{{"id":"{id}","type":"a.b","data":{{"text":"héllo"}}}}"#),
        targets: vec![],
        fan_out_until: None,
        fan_out_holder: None,
    }
}

fn target(e: &Endpoint) -> Target {
    target_of(e, e.delivery_seq)
}

/// A new delivery to `e` at its next number, of an event of its own.
async fn delivery(store: &impl Store, e: &Endpoint, active: bool) -> Delivery {
    let seq = take_delivery_seq(store, &e.org, e.id).await;
    let d = Delivery::new(&event(&format!("evt_{seq}")), &target(e), seq, active);
    assert!(store.insert_delivery(&d).await.expect("insert"));
    d
}

async fn stored(store: &impl Store, key: DeliveryKey) -> Delivery {
    store.get_delivery(key).await.expect("get").expect("stored")
}

fn failed_attempt() -> Attempt {
    Attempt {
        attempt_number: 0,
        trigger: Trigger::Automatic,
        started_at: now(),
        duration_ms: 12,
        status_code: Some(500),
        response_body: "oops".into(),
        error: Some(AttemptError::new(AttemptErrorKind::HttpStatus, "HTTP 500")),
        succeeded: false,
    }
}

/// A manual retry requested on `key` (the delivery must be there): the request's id and
/// the delivery as it now is.
async fn request_any_retry(store: &impl Store, key: DeliveryKey) -> (Uuid, Delivery) {
    let request = Uuid::now_v7();
    let requested = store
        .request_retry(key, request, RetryOf::Any)
        .await
        .expect("retry")
        .expect("there");
    (request, requested)
}

/// `ok_attempt()` recorded on `d` under `expect`, as the sender records it.
async fn record_success(store: &impl Store, d: &Delivery, expect: Expect) -> Option<Delivery> {
    store
        .record_attempt(d, expect, &ok_attempt(), &done(), now())
        .await
        .expect("record")
}

fn ok_attempt() -> Attempt {
    Attempt {
        status_code: Some(200),
        response_body: String::new(),
        error: None,
        succeeded: true,
        ..failed_attempt()
    }
}

fn retrying() -> AttemptOutcome {
    AttemptOutcome {
        status: DeliveryStatus::Retrying,
        next_attempt_at: Some(now() + chrono::Duration::seconds(5)),
    }
}

fn done() -> AttemptOutcome {
    AttemptOutcome {
        status: DeliveryStatus::Succeeded,
        next_attempt_at: None,
    }
}

async fn events_are_stored_once(store: Arc<impl Store>) {
    let mut e = event("evt_1");
    e.payload = format!(r#"{{"data":"{}"}}"#, "é".repeat(50_000));
    e.targets = vec![Target {
        endpoint_id: Uuid::now_v7(),
        endpoint_number: EndpointNumber(7),
        seq_floor: DeliverySeq(41),
    }];
    assert_eq!(store.insert_event(&e).await.expect("insert"), None);
    let mut again = event("evt_1");
    again.event_type = "x.y".into();
    assert_eq!(
        store.insert_event(&again).await.expect("insert again"),
        Some(e.clone()),
        "a repeat gets the stored event back, nothing written"
    );
    assert_eq!(
        store.get_event(&acme(), "evt_1").await.expect("get"),
        Some(e),
        "every field round-trips"
    );
    assert_eq!(
        store.get_event(&org("other"), "evt_1").await.expect("get"),
        None
    );
}

/// An unfinished fan-out changes hands only from the holder last seen; a holder's own
/// write sent again is applied again (it may have been applied, its answer lost).
async fn fan_outs_are_taken_over_from_the_holder_seen(store: Arc<impl Store>) {
    let first = now();
    let mut e = event("evt_take");
    e.fan_out_until = Some(first);
    store.insert_event(&e).await.expect("insert");
    let stored = store.get_event(&acme(), "evt_take").await.expect("get");
    assert_eq!(
        stored.and_then(|e| e.fan_out_until),
        Some(first),
        "round-trips"
    );
    let (me, other) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let mine = first + chrono::Duration::seconds(30);
    let take = |seen, until, holder| {
        let store = store.clone();
        async move {
            store
                .take_over_fan_out(&acme(), "evt_take", seen, until, holder)
                .await
                .expect("take")
        }
    };
    assert!(!take(None, mine, me).await, "not the holder seen");
    assert!(take(Some(first), mine, me).await);
    assert!(!take(Some(first), mine, other).await, "only one taker");
    assert!(
        take(Some(first), mine, me).await,
        "the taker's own write again"
    );
    let stored = store.get_event(&acme(), "evt_take").await.expect("get");
    assert_eq!(
        stored.map(|e| (e.fan_out_until, e.fan_out_holder)),
        Some((Some(mine), Some(me))),
        "round-trips"
    );
    assert!(
        take(Some(mine), first, me).await,
        "given up (until in the past)"
    );
    assert!(
        !take(Some(mine), first, other).await,
        "given up: the hold is no longer as seen"
    );
    let legacy = event("evt_legacy");
    store.insert_event(&legacy).await.expect("insert");
    assert!(
        store
            .take_over_fan_out(&acme(), "evt_legacy", None, mine, me)
            .await
            .expect("take"),
        "no holder recorded"
    );
    assert!(
        !store
            .take_over_fan_out(&acme(), "evt_nothing", None, mine, me)
            .await
            .expect("take"),
        "no such event"
    );
    assert!(
        !store
            .take_over_fan_out(&acme(), "evt_nothing", Some(mine), first, me)
            .await
            .expect("release"),
        "a release creates nothing"
    );
    assert_eq!(
        store.get_event(&acme(), "evt_nothing").await.expect("get"),
        None
    );
}

async fn endpoint_numbers_are_never_handed_out_twice(store: Arc<impl Store>) {
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.allocate_endpoint_number().await })
        })
        .collect();
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.expect("task").expect("number"));
    }
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), 10);
    assert!(numbers[0] >= EndpointNumber(1), "zero is never a number");
}

async fn pages_are_seq_ranges_newest_first(store: Arc<impl Store>) {
    let e = endpoint(store.as_ref()).await;
    let other = endpoint(store.as_ref()).await;
    let mut made = Vec::new();
    for _ in 0..45 {
        made.push(delivery(store.as_ref(), &e, true).await);
    }
    delivery(store.as_ref(), &other, true).await;
    let e = store
        .get_endpoint(&acme(), e.id)
        .await
        .expect("get")
        .expect("there");
    assert_eq!(e.delivery_seq, DeliverySeq(45));
    made.reverse();
    let (page1, total) = store.delivery_page(&e, 1, 20).await.expect("page 1");
    assert_eq!(total, 45);
    assert_eq!(page1, made[..20].to_vec(), "newest first, every field");
    let (page3, _) = store.delivery_page(&e, 3, 20).await.expect("page 3");
    assert_eq!(page3, made[40..].to_vec());
    let (past, total) = store.delivery_page(&e, 4, 20).await.expect("page 4");
    assert!(past.is_empty());
    assert_eq!(total, 45);
}

/// An id names its delivery's place: one read finds it. A repeat finds an event's
/// delivery by searching up from the number the publish saw.
async fn deliveries_are_found_by_id_and_by_event(store: Arc<impl Store>) {
    let e = endpoint(store.as_ref()).await;
    let before = store
        .get_endpoint(&acme(), e.id)
        .await
        .expect("get")
        .expect("there");
    let a = delivery(store.as_ref(), &e, true).await;
    let b = delivery(store.as_ref(), &e, false).await;
    assert_eq!(DeliveryKey::from_id(a.id), Some(a.key));
    assert_eq!(stored(store.as_ref(), a.key).await, a);
    assert_eq!(stored(store.as_ref(), b.key).await, b);
    assert_eq!(
        store
            .get_delivery(DeliveryKey {
                endpoint_number: e.number,
                seq: DeliverySeq(99)
            })
            .await
            .expect("get"),
        None
    );
    let later = now() + chrono::Duration::minutes(1);
    let found = |event_id: String, after: DeliverySeq, before_time| {
        let store = store.clone();
        async move {
            store
                .find_event_delivery(e.number, after, &event_id, before_time)
                .await
                .expect("find")
        }
    };
    assert_eq!(
        found(b.event_id.clone(), before.delivery_seq, later).await,
        Some(b.clone())
    );
    assert_eq!(
        found(b.event_id.clone(), b.key.seq, later).await,
        None,
        "above it"
    );
    assert_eq!(
        found(b.event_id.clone(), before.delivery_seq, a.created_at).await,
        None,
        "the search stops at deliveries created after the bound"
    );
    assert_eq!(
        found("evt_none".into(), DeliverySeq::NONE, later).await,
        None
    );
    assert!(
        !store.insert_delivery(&a).await.expect("insert again"),
        "a taken place stays as it is"
    );
}

/// One try, one record: an attempt is recorded only while the delivery waits for it.
async fn attempts_are_recorded_exactly_once(store: Arc<impl Store>) {
    let e = endpoint(store.as_ref()).await;
    let d = delivery(store.as_ref(), &e, true).await;
    let mut first = failed_attempt();
    first.response_body = "é".repeat(1000);
    let recorded = store
        .record_attempt(&d, Expect::Attempt(1), &first, &retrying(), now())
        .await
        .expect("record")
        .expect("recorded");
    assert_eq!(recorded.attempt_count(), 1);
    assert!(recorded.attempts[0].response_body.len() <= KEPT_BODY_BYTES);
    assert_eq!(recorded, stored(store.as_ref(), d.key).await, "as stored");
    for again in [Expect::Attempt(1), Expect::Attempt(3)] {
        assert_eq!(
            store
                .record_attempt(&d, again, &first, &retrying(), now())
                .await
                .expect("record"),
            None,
            "{again:?} is not the attempt it waits for"
        );
    }
    let mut network = failed_attempt();
    network.status_code = None;
    network.response_body = String::new();
    network.error = Some(AttemptError::new(
        AttemptErrorKind::Timeout,
        "no answer within 15000 ms",
    ));
    store
        .record_attempt(&d, Expect::Attempt(2), &network, &retrying(), now())
        .await
        .expect("record")
        .expect("recorded");
    let third = ok_attempt();
    let outcome = done();
    let after = store
        .record_attempt(&d, Expect::Attempt(3), &third, &outcome, now())
        .await
        .expect("record")
        .expect("recorded");
    let after_read = stored(store.as_ref(), d.key).await;
    assert_eq!(after, after_read);
    assert_eq!(after.attempt_count(), 3);
    assert_eq!(
        after
            .attempts
            .iter()
            .map(|a| a.attempt_number)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        after.attempts[0].response_body, "",
        "older attempts drop their body"
    );
    assert_eq!(
        after.attempts[1],
        Attempt {
            attempt_number: 2,
            ..network
        },
        "every field round-trips"
    );
    assert_eq!(after.status, DeliveryStatus::Succeeded);
    assert_eq!(after.next_attempt_at, None);
    assert_eq!(after.last_status_code(), Some(200));
}

/// The sender writes a delivery the publish has not written yet, but only with its
/// first attempt; the publish then leaves it as it is.
async fn a_first_attempt_writes_a_missing_delivery(store: Arc<impl Store>) {
    let e = endpoint(store.as_ref()).await;
    let seq = take_delivery_seq(store.as_ref(), &acme(), e.id).await;
    let seed = Delivery::new(&event("evt_late"), &target(&e), seq, true);
    assert_eq!(
        record_success(store.as_ref(), &seed, Expect::Attempt(2)).await,
        None,
        "only a first attempt may write it"
    );
    let recorded = record_success(store.as_ref(), &seed, Expect::Attempt(1))
        .await
        .expect("written");
    assert_eq!(
        (
            recorded.id,
            recorded.event_id.as_str(),
            recorded.endpoint_id,
            recorded.created_at
        ),
        (seed.id, "evt_late", e.id, seed.created_at)
    );
    assert!(
        !store.insert_delivery(&seed).await.expect("insert"),
        "not overwritten"
    );
    assert_eq!(
        stored(store.as_ref(), seed.key).await.status,
        DeliveryStatus::Succeeded
    );
}

/// A retry request leaves the recorded outcome alone; only its own attempt uses it up;
/// an automatic attempt meanwhile leaves it open.
async fn manual_requests_are_used_once(store: Arc<impl Store>) {
    let e = endpoint(store.as_ref()).await;
    let d = delivery(store.as_ref(), &e, true).await;
    let missing = DeliveryKey {
        endpoint_number: e.number,
        seq: DeliverySeq(999),
    };
    assert_eq!(
        store
            .request_retry(missing, Uuid::now_v7(), RetryOf::Any)
            .await
            .expect("retry"),
        None
    );
    record_success(store.as_ref(), &d, Expect::Attempt(1))
        .await
        .expect("recorded");
    // A recovery's request is opened only on a delivery still failed: this one succeeded.
    assert_eq!(
        store
            .request_retry(d.key, Uuid::now_v7(), RetryOf::Failed)
            .await
            .expect("retry"),
        None
    );
    let (request, requested) = request_any_retry(store.as_ref(), d.key).await;
    assert_eq!(
        (requested.status, requested.manual_retry),
        (DeliveryStatus::Succeeded, Some(request)),
        "the outcome stands until the retry happens"
    );
    assert_eq!(
        record_success(store.as_ref(), &d, Expect::Request(Uuid::now_v7())).await,
        None,
        "another request"
    );
    let automatic = record_success(store.as_ref(), &d, Expect::Attempt(2))
        .await
        .expect("recorded");
    assert_eq!(automatic.manual_retry, Some(request), "still open");
    let mut manual = ok_attempt();
    manual.trigger = Trigger::Manual;
    let after = store
        .record_attempt(&d, Expect::Request(request), &manual, &done(), now())
        .await
        .expect("record")
        .expect("recorded");
    assert_eq!(after.manual_retry, None, "used up");
    assert_eq!(after.attempts[2].trigger, Trigger::Manual);
    assert_eq!(after.attempts[2].attempt_number, 3);
    assert_eq!(
        store
            .record_attempt(&d, Expect::Request(request), &manual, &done(), now())
            .await
            .expect("record"),
        None,
        "one request, one record"
    );
}

async fn held_deliveries_wait_for_resume(store: Arc<impl Store>) {
    let e = endpoint(store.as_ref()).await;
    let born_held = delivery(store.as_ref(), &e, false).await;
    assert_eq!(
        (born_held.status, born_held.held),
        (DeliveryStatus::Paused, true)
    );
    let d = delivery(store.as_ref(), &e, true).await;
    assert!(
        store
            .hold(&d, Expect::Attempt(1), now())
            .await
            .expect("hold")
    );
    assert!(
        !store
            .hold(&d, Expect::Attempt(2), now())
            .await
            .expect("hold"),
        "not the attempt it waits for"
    );
    let other = endpoint(store.as_ref()).await;
    delivery(store.as_ref(), &other, false).await;
    let mut held: Vec<Uuid> = store
        .held_deliveries(e.number, 10)
        .await
        .expect("held")
        .iter()
        .map(|d| d.id)
        .collect();
    held.sort();
    let mut expected = vec![born_held.id, d.id];
    expected.sort();
    assert_eq!(held, expected, "this endpoint's only");
    let held = stored(store.as_ref(), d.key).await;
    assert_eq!((held.status, held.held), (DeliveryStatus::Paused, true));
    let at = now();
    assert!(store.resume_delivery(&held, at).await.expect("resume"));
    assert!(
        !store.resume_delivery(&held, at).await.expect("again"),
        "only held ones resume"
    );
    let resumed = stored(store.as_ref(), d.key).await;
    assert_eq!(
        (resumed.status, resumed.next_attempt_at, resumed.held),
        (DeliveryStatus::Pending, Some(at), false)
    );
    assert_eq!(
        store
            .held_deliveries(e.number, 10)
            .await
            .expect("held")
            .len(),
        1
    );

    // A manual retry of a finished delivery held by a paused endpoint keeps its outcome.
    let f = delivery(store.as_ref(), &e, true).await;
    record_success(store.as_ref(), &f, Expect::Attempt(1))
        .await
        .expect("recorded");
    let (request, requested) = request_any_retry(store.as_ref(), f.key).await;
    assert!(
        store
            .hold(&requested, Expect::Request(request), now())
            .await
            .expect("hold")
    );
    let kept = stored(store.as_ref(), f.key).await;
    assert_eq!(
        (kept.status, kept.held, kept.manual_retry),
        (DeliveryStatus::Succeeded, true, Some(request))
    );
    assert!(store.resume_delivery(&kept, now()).await.expect("resume"));
    let back = stored(store.as_ref(), f.key).await;
    assert_eq!(
        (back.status, back.held, back.manual_retry),
        (DeliveryStatus::Succeeded, false, Some(request))
    );
}

fn scheduled(d: &Delivery, attempt: u32, at: chrono::DateTime<chrono::Utc>) -> ScheduledAttempt {
    ScheduledAttempt {
        at,
        attempt,
        job: shared::pipeline::sender::delivery_job(d, None),
    }
}

/// The due list is read by the minute; the scheduler's mark moves only from what it saw.
async fn the_due_list_is_read_by_minute(store: Arc<impl Store>) {
    let e = endpoint(store.as_ref()).await;
    let a = delivery(store.as_ref(), &e, true).await;
    let b = delivery(store.as_ref(), &e, true).await;
    let minute = shared::domain::time::minute_of(now()) + chrono::Duration::hours(10);
    let in_a = scheduled(&a, 4, minute + chrono::Duration::seconds(5));
    let in_b = scheduled(&b, 2, minute + chrono::Duration::seconds(59));
    let next = scheduled(&a, 5, minute + chrono::Duration::seconds(60));
    for s in [&in_a, &in_b, &next] {
        store.schedule(s).await.expect("schedule");
    }
    let mut due = store.due_in_minute(minute).await.expect("due");
    due.sort_by_key(|s| s.at);
    assert_eq!(
        due,
        vec![in_a, in_b],
        "every field round-trips, that minute only"
    );
    assert_eq!(
        store
            .due_in_minute(minute + chrono::Duration::minutes(1))
            .await
            .expect("due"),
        vec![next]
    );
    assert!(
        store
            .due_in_minute(minute - chrono::Duration::minutes(1))
            .await
            .expect("due")
            .is_empty()
    );
    assert_eq!(store.scheduled_through().await.expect("mark"), None);
    assert!(
        store
            .mark_scheduled_through(None, minute)
            .await
            .expect("mark")
    );
    let later = minute + chrono::Duration::minutes(1);
    assert!(
        !store
            .mark_scheduled_through(None, later)
            .await
            .expect("mark"),
        "moved by someone else"
    );
    assert!(
        store
            .mark_scheduled_through(Some(minute), later)
            .await
            .expect("mark")
    );
    assert_eq!(store.scheduled_through().await.expect("mark"), Some(later));
}

async fn purges_delete_whole_histories(store: Arc<impl Store>) {
    let e = endpoint(store.as_ref()).await;
    let other = endpoint(store.as_ref()).await;
    let kept = delivery(store.as_ref(), &other, true).await;
    let mut made = Vec::new();
    for _ in 0..30 {
        let d = delivery(store.as_ref(), &e, true).await;
        store
            .record_attempt(
                &d,
                Expect::Attempt(1),
                &failed_attempt(),
                &retrying(),
                now(),
            )
            .await
            .expect("record");
        made.push(d);
    }
    assert_eq!(
        store.purge_deliveries(e.number, 20).await.expect("purge"),
        20
    );
    assert_eq!(
        store.purge_deliveries(e.number, 20).await.expect("purge"),
        10
    );
    assert_eq!(
        store.purge_deliveries(e.number, 20).await.expect("purge"),
        0
    );
    for d in &made {
        assert_eq!(store.get_delivery(d.key).await.expect("get"), None);
    }
    assert_eq!(
        stored(store.as_ref(), kept.key).await,
        kept,
        "other histories stay"
    );
}

/// The circuit breaker's pause, if the count reached `min_failures`.
fn breaker(min_failures: u32) -> Pause {
    Pause {
        by: PausedBy::CircuitBreaker,
        at: now(),
        min_failures: Some(min_failures),
    }
}

async fn the_failure_counter_is_atomic(store: Arc<impl Store>) {
    let e = endpoint(store.as_ref()).await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.record_failures(&acme(), e.id, 1).await })
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
    assert_eq!(
        store
            .record_failures(&acme(), e.id, 5)
            .await
            .expect("add five"),
        Some(15),
        "a run of failures is added at once"
    );
    let pause_at = |min_failures| {
        let store = store.clone();
        async move {
            store
                .pause_endpoint(&acme(), e.id, breaker(min_failures))
                .await
                .expect("pause")
        }
    };
    assert!(!pause_at(16).await, "below threshold");
    assert!(pause_at(15).await);
    assert!(!pause_at(15).await, "already paused");
    let paused = store
        .get_endpoint(&acme(), e.id)
        .await
        .expect("get")
        .expect("there");
    assert!(!paused.is_active);
    assert_eq!(paused.paused_by, Some(PausedBy::CircuitBreaker));
    assert_eq!(paused.consecutive_failures, 15);
    // An admin pausing it again keeps what paused it first.
    let again = store
        .update_endpoint(
            &acme(),
            e.id,
            &shared::domain::EndpointChanges {
                is_active: Some(false),
                ..Default::default()
            },
            now(),
        )
        .await
        .expect("update")
        .expect("there");
    assert_eq!(again.paused_by, Some(PausedBy::CircuitBreaker));
    assert_eq!(
        store.record_success(&acme(), e.id).await.expect("success"),
        15,
        "the count it cleared"
    );
    assert_eq!(
        store
            .record_success(&acme(), e.id)
            .await
            .expect("success at zero is a no-op"),
        0
    );
    assert_eq!(
        store
            .record_success(&acme(), Uuid::now_v7())
            .await
            .expect("success of a deleted endpoint is a no-op"),
        0
    );
    assert_eq!(
        store
            .get_endpoint(&acme(), e.id)
            .await
            .expect("get")
            .expect("there")
            .consecutive_failures,
        0
    );
    assert_eq!(
        store
            .record_failures(&acme(), Uuid::now_v7(), 1)
            .await
            .expect("gone"),
        None
    );
}

on_both_backends!(
    events_are_stored_once,
    fan_outs_are_taken_over_from_the_holder_seen,
    endpoint_numbers_are_never_handed_out_twice,
    pages_are_seq_ranges_newest_first,
    deliveries_are_found_by_id_and_by_event,
    attempts_are_recorded_exactly_once,
    a_first_attempt_writes_a_missing_delivery,
    manual_requests_are_used_once,
    held_deliveries_wait_for_resume,
    the_due_list_is_read_by_minute,
    purges_delete_whole_histories,
    the_failure_counter_is_atomic,
);
