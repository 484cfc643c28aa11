//! One contract for the storage ports, run against the embedded store and DynamoDB
//! (moto): same results, same ordering, same conditional-write failures.

use crate::common::{Store, acme, org};
use shared::domain::EndpointNumber;
use shared::domain::OrgSlug;
use shared::domain::PausedBy;
use shared::domain::{
    ApiKey, Endpoint, EndpointChanges, KeyHash, NewEndpoint, Role, SigningSecret, now,
};
use shared::ports::{StoreError, StoreResult};
use std::sync::Arc;
use std::time::Duration;

fn endpoint(org: &OrgSlug, n: usize) -> Endpoint {
    Endpoint::create(
        org,
        NewEndpoint {
            url: format!("https://example.com/{n}"),
            description: format!("endpoint {n}"),
            event_types: vec!["alert.fired".into(), format!("t{n}")],
        },
        EndpointNumber(u32::try_from(n).expect("small") + 1),
        now(),
    )
}

async fn endpoints_round_trip_newest_first_per_org(store: Arc<impl Store>) {
    let mut made = Vec::new();
    for n in 0..5 {
        let e = endpoint(&acme(), n);
        store.insert_endpoint(&e, 100).await.expect("insert");
        made.push(e);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elsewhere = endpoint(&org("acme-2"), 9);
    store
        .insert_endpoint(&elsewhere, 100)
        .await
        .expect("insert");

    let listed = store.list_endpoints(&acme()).await.expect("list");
    made.reverse();
    assert_eq!(listed, made, "every field round-trips, newest first");
    assert_eq!(
        store.list_endpoints(&org("acme-2")).await.expect("list"),
        vec![elsewhere.clone()]
    );
    assert!(
        store
            .list_endpoints(&org("nobody"))
            .await
            .expect("list")
            .is_empty()
    );

    assert_eq!(
        store.get_endpoint(&acme(), made[0].id).await.expect("get"),
        Some(made[0].clone())
    );
    assert_eq!(
        store
            .get_endpoint(&acme(), elsewhere.id)
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        store
            .get_endpoint(&acme(), uuid::Uuid::now_v7())
            .await
            .expect("get"),
        None
    );
}

/// Insert acme's endpoint `n` with the organisation allowed two endpoints.
async fn insert_within_two(store: &impl Store, n: usize) -> StoreResult<()> {
    store.insert_endpoint(&endpoint(&acme(), n), 2).await
}

async fn duplicate_ids_are_refused_without_counting(store: Arc<impl Store>) {
    let e = endpoint(&acme(), 1);
    store.insert_endpoint(&e, 2).await.expect("insert");
    assert!(matches!(
        store.insert_endpoint(&e, 2).await,
        Err(StoreError::AlreadyExists)
    ));
    insert_within_two(store.as_ref(), 2)
        .await
        .expect("the refused duplicate took no place");
    assert!(matches!(
        insert_within_two(store.as_ref(), 3).await,
        Err(StoreError::EndpointLimitReached { limit: 2 })
    ));
}

/// On the embedded store only: moto evaluates a transaction's conditions without
/// isolating concurrent transactions (real DynamoDB serialises them), so this race cannot
/// be shown against the emulator. The sequential limit cases above run on both.
async fn limit_holds_under_concurrent_creates(store: Arc<impl Store>) {
    let tasks: Vec<_> = (0..12)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.insert_endpoint(&endpoint(&acme(), n), 5).await })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(()) => created += 1,
            Err(StoreError::EndpointLimitReached { limit: 5 }) => {}
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    assert_eq!(created, 5);
    assert_eq!(store.list_endpoints(&acme()).await.expect("list").len(), 5);
}

async fn delete_frees_a_place_and_is_scoped(store: Arc<impl Store>) {
    let a = endpoint(&acme(), 1);
    let b = endpoint(&acme(), 2);
    store.insert_endpoint(&a, 2).await.expect("a");
    store.insert_endpoint(&b, 2).await.expect("b");
    assert!(
        !store
            .delete_endpoint(&org("other"), a.id)
            .await
            .expect("scoped")
    );
    assert!(store.delete_endpoint(&acme(), a.id).await.expect("delete"));
    assert!(!store.delete_endpoint(&acme(), a.id).await.expect("twice"));
    assert_eq!(store.list_endpoints(&acme()).await.expect("list"), vec![b]);
    insert_within_two(store.as_ref(), 3)
        .await
        .expect("a place was freed");
    assert!(matches!(
        insert_within_two(store.as_ref(), 4).await,
        Err(StoreError::EndpointLimitReached { .. })
    ));
}

async fn updates_are_partial_and_resuming_resets_failures(store: Arc<impl Store>) {
    let mut e = endpoint(&acme(), 1);
    e.is_active = false;
    e.consecutive_failures = 20;
    store.insert_endpoint(&e, 100).await.expect("insert");
    let later = e.created_at + chrono::Duration::seconds(3);

    let unchanged = store
        .update_endpoint(&acme(), e.id, &EndpointChanges::default(), later)
        .await
        .expect("update");
    assert_eq!(unchanged, Some(e.clone()), "empty changes write nothing");

    let paused = store
        .update_endpoint(
            &acme(),
            e.id,
            &EndpointChanges {
                description: Some("renamed".into()),
                is_active: Some(false),
                ..Default::default()
            },
            later,
        )
        .await
        .expect("update")
        .expect("exists");
    assert_eq!(paused.description, "renamed");
    assert_eq!(
        paused.paused_by,
        Some(PausedBy::Manual),
        "paused by the PATCH"
    );
    assert_eq!(paused.consecutive_failures, 20);
    assert_eq!(paused.updated_at, later);
    assert_eq!(paused.url, e.url);

    let changes = EndpointChanges {
        url: Some("https://example.org/new".into()),
        event_types: Some(vec!["x.y".into()]),
        is_active: Some(true),
        ..Default::default()
    };
    let resumed = store
        .update_endpoint(&acme(), e.id, &changes, later)
        .await
        .expect("update")
        .expect("exists");
    let mut expected = paused.clone();
    changes.apply(&mut expected, later);
    assert_eq!(
        resumed, expected,
        "the adapter applies the same rules as the domain"
    );
    assert_eq!(resumed.consecutive_failures, 0);
    assert_eq!(resumed.paused_by, None);
    assert_eq!(
        store.get_endpoint(&acme(), e.id).await.expect("get"),
        Some(resumed)
    );

    assert_eq!(
        store
            .update_endpoint(&acme(), uuid::Uuid::now_v7(), &changes, later)
            .await
            .expect("update"),
        None
    );
    assert_eq!(
        store
            .update_endpoint(&org("other"), e.id, &changes, later)
            .await
            .expect("update"),
        None
    );
    assert!(
        store
            .get_endpoint(&org("other"), e.id)
            .await
            .expect("get")
            .is_none(),
        "no item was created"
    );
}

async fn secrets_are_replaced_in_place(store: Arc<impl Store>) {
    let e = endpoint(&acme(), 1);
    store.insert_endpoint(&e, 100).await.expect("insert");
    let fresh = SigningSecret::generate();
    let later = e.created_at + chrono::Duration::seconds(1);
    assert!(
        store
            .replace_secret(&acme(), e.id, &fresh, later)
            .await
            .expect("rotate")
    );
    let got = store
        .get_endpoint(&acme(), e.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got.secret, fresh);
    assert_eq!(got.updated_at, later);
    assert!(
        !store
            .replace_secret(&org("other"), e.id, &SigningSecret::generate(), later)
            .await
            .expect("scoped")
    );
    assert!(
        !store
            .replace_secret(&acme(), uuid::Uuid::now_v7(), &fresh, later)
            .await
            .expect("unknown")
    );
    assert!(
        store
            .get_endpoint(&org("other"), e.id)
            .await
            .expect("get")
            .is_none()
    );
}

async fn keys_by_hash_and_by_org(store: Arc<impl Store>) {
    let a = ApiKey::new("avk_contract_key_a", &acme(), Role::Admin, now());
    tokio::time::sleep(Duration::from_millis(2)).await;
    let b = ApiKey::new("avk_contract_key_b", &acme(), Role::Publisher, now());
    let c = ApiKey::new("avk_contract_key_c", &org("other"), Role::Member, now());
    for k in [&b, &a, &c] {
        store.insert_key(k).await.expect("insert");
    }
    assert!(matches!(
        store.insert_key(&a).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store
            .find_key(&KeyHash::of("avk_contract_key_a"))
            .await
            .expect("find"),
        Some(a.clone())
    );
    assert_eq!(
        store
            .find_key(&KeyHash::of("avk_contract_key_z"))
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        store.list_keys(&acme()).await.expect("list"),
        vec![a.clone(), b.clone()],
        "oldest first"
    );
    assert!(store.delete_key(&a.hash).await.expect("delete"));
    assert!(!store.delete_key(&a.hash).await.expect("twice"));
    assert_eq!(store.find_key(&a.hash).await.expect("find"), None);
    assert_eq!(store.list_keys(&acme()).await.expect("list"), vec![b]);
    assert_eq!(store.list_keys(&org("other")).await.expect("list"), vec![c]);
}

/// A portal session's key keeps its end (to the second) and its parent through the store
/// and the list, and a request with it is refused once the end has passed.
async fn session_keys_keep_their_end(store: Arc<impl Store>) {
    let ends = chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("time");
    let (_, parent) = crate::common::admin_key(store.as_ref()).await;
    let (token, _) = shared::key_admin::mint_session(store.as_ref(), &parent, Role::Member, ends)
        .await
        .expect("session");
    let hash = shared::domain::KeyHash::of(&token);
    let found = store.find_key(&hash).await.expect("find").expect("stored");
    assert_eq!(
        (found.expires_at, found.parent_id),
        (Some(ends), Some(parent.id))
    );
    let listed = store.list_keys(&acme()).await.expect("list");
    assert_eq!(
        listed
            .iter()
            .find(|k| k.hash == hash)
            .map(|k| (k.expires_at, k.parent_id)),
        Some((Some(ends), Some(parent.id))),
        "the list shows a session's end and parent"
    );
    // A member may read the list, but this session's end (2026-09-21) has passed.
    let refused = crate::common::send(
        &crate::common::router(store.clone()),
        "endpoints-list.json",
        |e| crate::common::set_key(e, Some(&token)),
    )
    .await;
    crate::common::assert_error(&refused, 401, "unauthorized");
}

on_both_backends!(
    session_keys_keep_their_end,
    endpoints_round_trip_newest_first_per_org,
    duplicate_ids_are_refused_without_counting,
    delete_frees_a_place_and_is_scoped,
    updates_are_partial_and_resuming_resets_failures,
    secrets_are_replaced_in_place,
    keys_by_hash_and_by_org,
);

#[tokio::test]
async fn limit_holds_under_concurrent_creates_on_memory_store() {
    limit_holds_under_concurrent_creates(crate::common::memory().await).await;
}
