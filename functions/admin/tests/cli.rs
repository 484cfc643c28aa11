//! `webhooks-admin`, the real binary, on a fresh table in the moto server
//! (`scripts/test.sh` starts it and sets `AWS_ENDPOINT_URL`): mint, list with last use,
//! revoke by key and by id, with the portal sessions the key created.

use shared::adapters::dynamo::DynamoStore;
use shared::domain::{KeyHash, Role};
use shared::key_admin;
use shared::ports::KeyStore;
use std::process::{Command, Output};

/// An operator-chosen key as strong as a deployed table asks: 35 characters after `avk_`.
const PUBLISHER: &str = "avk_cli_test_publisher_0123456789abcd";

fn admin(table: &str, args: &[&str]) -> Output {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run the tests with scripts/test.sh, which starts moto"
    );
    Command::new(env!("CARGO_BIN_EXE_webhooks-admin"))
        .args(args)
        .env("TABLE_NAME", table)
        .output()
        .expect("run webhooks-admin")
}

/// The table, as the service's functions reach it.
async fn store(table: &str) -> DynamoStore {
    let config = aws_config::load_from_env().await;
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table.to_owned())
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn mints_lists_with_last_use_and_revokes_by_key_and_by_id() {
    let table = format!("cli-{}", uuid::Uuid::now_v7());
    stdout(&admin(&table, &["table", "create"]));

    let key = stdout(&admin(
        &table,
        &["keys", "create", "--org", "acme", "--role", "admin"],
    ))
    .trim()
    .to_owned();
    assert!(key.starts_with("avk_"), "{key}");
    stdout(&admin(
        &table,
        &[
            "keys",
            "create",
            "--org",
            "acme",
            "--role",
            "publisher",
            "--key",
            PUBLISHER,
        ],
    ));

    let listed = stdout(&admin(&table, &["keys", "list", "--org", "acme"]));
    let rows: Vec<&str> = listed.lines().collect();
    assert_eq!(rows.len(), 3, "a header and two keys: {listed}");
    assert!(rows[0].starts_with("ID") && rows[0].contains("LAST USED"));
    assert!(
        rows[1].contains("admin") && rows[1].ends_with("never"),
        "{listed}"
    );
    assert!(
        rows[2].contains("publisher") && rows[2].contains("...abcd"),
        "{listed}"
    );
    assert!(!listed.contains(&key), "never the key itself");

    // A use recorded (as a request that passes records it) shows in the list.
    let store = store(&table).await;
    let used_at = chrono::DateTime::parse_from_rfc3339("2026-11-27T10:00:00Z")
        .expect("time")
        .to_utc();
    store
        .record_key_use(&KeyHash::of(&key), used_at)
        .await
        .expect("record a use");
    let listed = stdout(&admin(&table, &["keys", "list", "--org", "acme"]));
    assert!(
        listed
            .lines()
            .nth(1)
            .expect("admin row")
            .ends_with("2026-11-27T10:00:00.000Z"),
        "{listed}"
    );

    // By id, within its organisation only.
    let admin_id = listed
        .lines()
        .nth(1)
        .and_then(|row| row.split_whitespace().next())
        .expect("the admin key's id")
        .to_owned();
    // A name that is no organisation slug owns no key either.
    for wrong_org in ["other", "Not A Slug"] {
        let revoked = admin(
            &table,
            &["keys", "revoke", "--id", &admin_id, "--org", wrong_org],
        );
        assert!(!revoked.status.success(), "{wrong_org}");
        assert!(String::from_utf8_lossy(&revoked.stderr).contains("no such key"));
    }
    let no_org = admin(&table, &["keys", "revoke", "--id", &admin_id]);
    assert!(!no_org.status.success(), "--id needs --org");
    let neither = admin(&table, &["keys", "revoke"]);
    assert!(!neither.status.success(), "--key or --id is required");
    stdout(&admin(
        &table,
        &["keys", "revoke", "--id", &admin_id, "--org", "acme"],
    ));
    assert_eq!(
        store.find_key(&KeyHash::of(&key)).await.expect("find"),
        None,
        "revoked at once"
    );
    // A use recorded after the revocation does not bring the key back.
    store
        .record_key_use(&KeyHash::of(&key), used_at)
        .await
        .expect("record a use");
    assert_eq!(
        store.find_key(&KeyHash::of(&key)).await.expect("find"),
        None
    );

    // By the key itself.
    stdout(&admin(&table, &["keys", "revoke", "--key", PUBLISHER]));
    for org in ["acme", "Not A Slug"] {
        let listed = admin(&table, &["keys", "list", "--org", org]);
        assert_eq!(stdout(&listed), "");
        let said = String::from_utf8_lossy(&listed.stderr);
        assert!(said.contains(&format!("no keys for org {org}")), "{said}");
    }
    let refused = admin(
        &table,
        &["keys", "create", "--org", "Not A Slug", "--role", "admin"],
    );
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("error: invalid organisation: must be 1-64 characters"),
        "{said}"
    );
}

/// `keys revoke --id ID --org acme`: what it printed.
fn revoke_in_acme(table: &str, id: uuid::Uuid) -> String {
    stdout(&admin(
        table,
        &["keys", "revoke", "--id", &id.to_string(), "--org", "acme"],
    ))
}

/// A chosen key shorter than a deployed table asks for is refused, saying why, and
/// nothing is stored; one just long enough is taken.
#[tokio::test]
async fn a_chosen_key_needs_32_characters_after_the_prefix() {
    let table = format!("cli-{}", uuid::Uuid::now_v7());
    stdout(&admin(&table, &["table", "create"]));
    let create = |key: &str| {
        admin(
            &table,
            &[
                "keys", "create", "--org", "acme", "--role", "admin", "--key", key,
            ],
        )
    };
    let body31 = "k".repeat(31);
    for short in [
        "avk_local_admin".to_owned(),
        format!("avk_{body31}"),
        format!("key_{body31}xy"),
    ] {
        let refused = create(&short);
        assert!(!refused.status.success(), "{short}");
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(
            said.contains("error: invalid key: a key for a deployed table must be avk_ followed by at least 32 characters"),
            "{said}"
        );
        assert!(!said.contains(&short), "the key is not echoed: {said}");
        assert!(refused.stdout.is_empty());
    }
    let store = store(&table).await;
    assert!(
        store
            .list_keys(&shared::domain::OrgSlug::parse("acme").expect("slug"))
            .await
            .expect("list")
            .is_empty()
    );
    let long = format!("avk_{body31}k");
    assert_eq!(stdout(&create(&long)).trim(), long);
}

/// Revoking a key revokes the portal sessions it created (and any a session made before
/// sessions were refused that), by key and by id; the list shows each session's parent.
#[tokio::test]
async fn revoking_a_key_revokes_its_sessions_and_the_list_shows_parents() {
    let table = format!("cli-{}", uuid::Uuid::now_v7());
    stdout(&admin(&table, &["table", "create"]));
    let store = store(&table).await;
    let acme = shared::domain::OrgSlug::parse("acme").expect("slug");
    let ends = shared::domain::now() + chrono::TimeDelta::hours(1);
    let mut admins = Vec::new();
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let key = stdout(&admin(
            &table,
            &["keys", "create", "--org", "acme", "--role", "admin"],
        ))
        .trim()
        .to_owned();
        let record = store
            .find_key(&KeyHash::of(&key))
            .await
            .expect("find")
            .expect("minted");
        let (session, made) = key_admin::mint_session(&store, &record, Role::Member, ends)
            .await
            .expect("session");
        // As a session could make one before they were refused.
        let mut grandchild =
            shared::domain::ApiKey::new(&format!("{session}_child"), &acme, Role::Admin, ends);
        grandchild.expires_at = Some(ends);
        grandchild.parent_id = Some(made.id);
        store.insert_key(&grandchild).await.expect("grandchild");
        sessions.push(vec![KeyHash::of(&session), grandchild.hash.clone()]);
        admins.push((key, record));
    }

    let listed = stdout(&admin(&table, &["keys", "list", "--org", "acme"]));
    for (_, record) in &admins {
        let children: Vec<&str> = listed
            .lines()
            .filter(|row| row.contains(&format!("(portal session of {} until ", record.id)))
            .collect();
        assert_eq!(children.len(), 1, "{listed}");
        assert!(children[0].contains("member"), "{listed}");
    }

    let (key, record) = &admins[0];
    let said = stdout(&admin(&table, &["keys", "revoke", "--key", key]));
    assert_eq!(
        said.trim(),
        format!(
            "revoked key {} and 2 portal session(s) it created",
            record.id
        )
    );
    let (_, other) = &admins[1];
    let said = revoke_in_acme(&table, other.id);
    assert_eq!(
        said.trim(),
        format!(
            "revoked key {} and 2 portal session(s) it created",
            other.id
        )
    );
    for hash in sessions.iter().flatten() {
        assert_eq!(store.find_key(hash).await.expect("find"), None);
    }
    assert!(store.list_keys(&acme).await.expect("list").is_empty());

    // A session made before sessions recorded their parent: listed as such.
    let (_, orphan) = key_admin::mint(
        &store,
        &acme,
        Role::Admin,
        None,
        shared::domain::KeyStrength::Deployed,
    )
    .await
    .expect("key");
    let mut old =
        shared::domain::ApiKey::new("avk_an_old_session_token", &acme, Role::Member, ends);
    old.expires_at = Some(ends);
    store.insert_key(&old).await.expect("old session");
    let listed = stdout(&admin(&table, &["keys", "list", "--org", "acme"]));
    assert!(
        listed.contains("(portal session of an unrecorded key until "),
        "{listed}"
    );
    let said = revoke_in_acme(&table, orphan.id);
    assert!(said.contains("and 0 portal session(s)"), "{said}");
}
