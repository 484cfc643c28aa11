//! Portal sessions through the API (`lambda_http` requests from `events/`), on both
//! backends: a session cannot mint another, records the key that made it, and goes when
//! that key is revoked, by key or by id.

use crate::common::*;
use serde_json::{Value, json};
use shared::domain::{KeyHash, Role};
use shared::key_admin;
use shared::ports::KeyStore;
use std::sync::Arc;

/// `POST /org/acme/webhooks/portal-sessions` as `key`, for a session of `role`.
async fn create_session(r: &axum::Router, key: &str, role: &str) -> Answer {
    send(r, "portal-sessions-create.json", |e| {
        set_key(e, Some(key));
        set_body(e, &json!({"role": role, "ttl_seconds": 900}).to_string());
    })
    .await
}

/// The token of a new session made by `key`.
async fn session_of(r: &axum::Router, key: &str, role: &str) -> String {
    let created = create_session(r, key, role).await;
    assert_eq!(created.status, 201, "{}", created.json);
    created.json["token"].as_str().expect("a token").to_owned()
}

/// What `GET /org/acme/webhooks/endpoints` answers `key`.
async fn list_as(r: &axum::Router, key: &str) -> u16 {
    send(r, "endpoints-list.json", |e| set_key(e, Some(key)))
        .await
        .status
}

async fn a_session_cannot_mint_and_goes_with_the_key_that_made_it(store: Arc<impl Store>) {
    let r = router(store.clone());
    for revoke_by_id in [false, true] {
        let (key, admin) = admin_key(store.as_ref()).await;
        let sessions = [
            session_of(&r, &key, "admin").await,
            session_of(&r, &key, "member").await,
        ];
        for (session, why) in sessions.iter().zip([
            "a portal session may not create portal sessions or keys",
            // A member's role is refused first, as a member key's is.
            "this API key's role may not do that",
        ]) {
            // Neither an admin session nor a member one may make a session, of any role.
            for role in ["admin", "member"] {
                let refused = create_session(&r, session, role).await;
                assert_error(&refused, 403, "forbidden");
                assert_eq!(refused.json["error"]["message"], why);
            }
            assert_eq!(list_as(&r, session).await, 200, "a session can read");
            let record = store
                .find_key(&KeyHash::of(session))
                .await
                .expect("find")
                .expect("stored");
            assert_eq!(record.parent_id, Some(admin.id), "it records its parent");
        }
        let listed = key_admin::list(store.as_ref(), &acme())
            .await
            .expect("list");
        assert_eq!(
            listed
                .iter()
                .filter(|k| k.parent_id == Some(admin.id) && k.expires_at.is_some())
                .count(),
            2,
            "the list shows both sessions' parent"
        );

        // Another admin's session is not the revoked key's: it stays.
        let (other_key, _) = admin_key(store.as_ref()).await;
        let unrelated = session_of(&r, &other_key, "member").await;

        let revoked = if revoke_by_id {
            key_admin::revoke_by_id(store.as_ref(), &acme(), admin.id).await
        } else {
            key_admin::revoke(store.as_ref(), &key).await
        }
        .expect("revoke");
        assert_eq!(
            (revoked.key.id, revoked.sessions),
            (admin.id, 2),
            "by id: {revoke_by_id}"
        );
        for session in sessions.iter().chain([&key]) {
            let refused = send(&r, "endpoints-list.json", |e| set_key(e, Some(session))).await;
            assert_error(&refused, 401, "unauthorized");
        }
        assert_eq!(list_as(&r, &unrelated).await, 200);
    }
}

async fn a_member_key_still_cannot_make_a_session(store: Arc<impl Store>) {
    seed_keys(store.as_ref()).await;
    let r = router(store);
    let refused = create_session(&r, MEMBER_KEY, "member").await;
    assert_error(&refused, 403, "forbidden");
    assert_eq!(
        refused.json["error"]["message"],
        Value::from("this API key's role may not do that"),
        "a role refusal says so, not that it is a session"
    );
}

on_both_backends!(
    a_session_cannot_mint_and_goes_with_the_key_that_made_it,
    a_member_key_still_cannot_make_a_session,
);

/// A session item written before sessions recorded their parent reads, without one, and
/// a revocation leaves it to its end.
#[tokio::test]
async fn a_dynamodb_session_item_without_a_parent_still_reads() {
    let (client, table) = dynamo_table().await;
    let store = shared::adapters::dynamo::DynamoStore::new(client.clone(), table.clone());
    let (_, admin) = admin_key(&store).await;
    let ends = shared::domain::now() + chrono::TimeDelta::hours(1);
    let (token, session) = key_admin::mint_session(&store, &admin, Role::Member, ends)
        .await
        .expect("session");
    let hash = KeyHash::of(&token);
    let pk = aws_sdk_dynamodb::types::AttributeValue::S(format!("APIKEY#{}", hash.as_str()));
    let sk = aws_sdk_dynamodb::types::AttributeValue::S("APIKEY".to_owned());
    let item = client
        .get_item()
        .table_name(&table)
        .key("pk", pk.clone())
        .key("sk", sk.clone())
        .send()
        .await
        .expect("get")
        .item
        .expect("the session's item");
    assert_eq!(
        item.get("parent_id").and_then(|v| v.as_s().ok()),
        Some(&admin.id.to_string()),
        "stored as the key id"
    );
    client
        .update_item()
        .table_name(&table)
        .key("pk", pk)
        .key("sk", sk)
        .update_expression("REMOVE parent_id")
        .send()
        .await
        .expect("make it an old item");
    let found = store.find_key(&hash).await.expect("find").expect("stored");
    assert_eq!((found.id, found.parent_id), (session.id, None));
    let revoked = key_admin::revoke_by_id(&store, &acme(), admin.id)
        .await
        .expect("revoke");
    assert_eq!(revoked.sessions, 0);
    assert!(store.find_key(&hash).await.expect("find").is_some());
}
