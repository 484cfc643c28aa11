//! `webhooks-admin`, the real binary, on a fresh table in the moto server
//! (`scripts/test.sh` starts it and sets `AWS_ENDPOINT_URL`): mint, list with last use,
//! revoke by key and by id.

use shared::adapters::dynamo::DynamoStore;
use shared::domain::KeyHash;
use shared::ports::KeyStore;
use std::process::{Command, Output};

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
            "avk_cli_test_publisher",
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
        rows[2].contains("publisher") && rows[2].contains("...sher"),
        "{listed}"
    );
    assert!(!listed.contains(&key), "never the key itself");

    // A use recorded (as a request that passes records it) shows in the list.
    let config = aws_config::load_from_env().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table.clone());
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
    stdout(&admin(
        &table,
        &["keys", "revoke", "--key", "avk_cli_test_publisher"],
    ));
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
