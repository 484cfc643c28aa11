//! Retention that stays honest (on both backends, with a clock the test moves): an
//! event or delivery past its `expires_at` is not shown, counted or reused, though it is
//! still stored (DynamoDB's TTL deletes lazily, moto never), and the live ones page as
//! before.

use crate::common::{acme, dynamo_table, take_delivery_seq, target_of};
use crate::delivery_contract::endpoint;
use chrono::{DateTime, Duration, Utc};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::memory::MemoryStore;
use shared::domain::{Clock, Delivery, Event, Retention};
use shared::ports::Store;
use std::sync::{Arc, Mutex};

/// A clock the test sets.
struct TestClock(Mutex<DateTime<Utc>>);

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("lock")
    }
}

impl TestClock {
    fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().expect("lock") = at;
    }
}

fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 0).expect("time")
}

fn event(id: &str, created_at: DateTime<Utc>, data: &str) -> Event {
    Event {
        org: acme(),
        id: id.into(),
        event_type: "a.b".into(),
        created_at,
        payload: format!(r#"{{"id":"{id}","data":"{data}"}}"#),
        targets: vec![],
        fan_out_until: None,
        fan_out_holder: None,
    }
}

async fn case(store: impl Store, clock: Arc<TestClock>) {
    let t0 = start();
    let e = endpoint(&store).await;
    // Five deliveries an hour apart, and their events; before the third, a number taken
    // and never used (a publish that died), so the history has a gap.
    let mut made: Vec<Delivery> = Vec::new();
    for hour in 0..5 {
        if hour == 2 {
            take_delivery_seq(&store, &acme(), e.id).await;
        }
        let created = t0 + Duration::hours(hour);
        let ev = event(&format!("evt_{hour}"), created, "first");
        assert!(store.insert_event(&ev).await.expect("event").is_none());
        let seq = take_delivery_seq(&store, &acme(), e.id).await;
        let d = Delivery::new(&ev, &target_of(&e, seq.previous()), seq, true);
        assert!(store.insert_delivery(&d).await.expect("delivery"));
        made.push(d);
    }
    let endpoint = store
        .get_endpoint(&acme(), e.id)
        .await
        .expect("get")
        .expect("endpoint");
    let page = |n: u32| {
        let store = &store;
        let endpoint = endpoint.clone();
        async move {
            let (items, total) = store.delivery_page(&endpoint, n, 2).await.expect("page");
            let seqs: Vec<u64> = items.iter().map(|d| d.key.seq.0).collect();
            (seqs, total)
        }
    };

    // Within the retention: everything, newest first, page N by arithmetic (number 3
    // is the gap).
    clock.set(t0 + Duration::hours(5));
    assert_eq!(page(1).await, (vec![6, 5], 6));
    assert_eq!(page(2).await, (vec![4], 6));
    assert_eq!(page(3).await, (vec![2, 1], 6));

    // A day after the first two were made (and a minute): those two are gone, and the
    // live history starts after the gap.
    clock.set(t0 + Duration::days(1) + Duration::hours(1) + Duration::minutes(1));
    assert_eq!(page(1).await, (vec![6, 5], 3), "total counts the live ones");
    assert_eq!(page(2).await, (vec![4], 3));
    assert_eq!(page(3).await, (vec![], 3));
    for (i, live) in [(0, false), (1, false), (2, true)] {
        let stored = store.get_delivery(made[i].key).await.expect("get");
        assert_eq!(stored.is_some(), live, "delivery {i}");
    }
    for (id, live) in [("evt_0", false), ("evt_2", true)] {
        let stored = store.get_event(&acme(), id).await.expect("get");
        assert_eq!(stored.is_some(), live, "{id}");
    }

    // An expired event's id is free again: a new event takes it; a live one's is not.
    let again = event("evt_0", clock.now(), "second");
    assert!(store.insert_event(&again).await.expect("insert").is_none());
    let stored = store
        .get_event(&acme(), "evt_0")
        .await
        .expect("get")
        .expect("new");
    assert!(stored.payload.contains("second"));
    let taken = store
        .insert_event(&event("evt_3", clock.now(), "other"))
        .await
        .expect("insert")
        .expect("a live event keeps its id");
    assert!(taken.payload.contains("first"));

    // Everything expired: nothing shown, nothing counted.
    clock.set(t0 + Duration::days(2));
    assert_eq!(page(1).await, (vec![], 0));
}

fn retention(clock: &Arc<TestClock>) -> Retention {
    Retention::days(1).with_clock(clock.clone())
}

#[tokio::test]
async fn memory_store_hides_what_expired() {
    let clock = Arc::new(TestClock(Mutex::new(start())));
    case(MemoryStore::new().with_retention(retention(&clock)), clock).await;
}

#[tokio::test]
async fn dynamodb_hides_what_expired_before_ttl_deletes_it() {
    let clock = Arc::new(TestClock(Mutex::new(start())));
    let (client, table) = dynamo_table().await;
    case(
        DynamoStore::new(client, table).with_retention(retention(&clock)),
        clock,
    )
    .await;
}
