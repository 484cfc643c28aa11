//! The tenant × role matrix: every route against every kind of caller, with the exact
//! status each must get, on both backends. A route added without its row fails
//! `every_route_is_in_the_matrix`.

use crate::common::*;
use serde_json::json;
use shared::domain::Role;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Who calls.
#[derive(Debug, Clone, Copy)]
enum Caller {
    NoKey,
    UnknownKey,
    RevokedKey,
    Member,
    Publisher,
    Admin,
    OtherOrgAdmin,
    /// Portal sessions the admin key made: their role's rights, but no minting.
    AdminSession,
    MemberSession,
}

const CALLERS: [Caller; 9] = [
    Caller::NoKey,
    Caller::UnknownKey,
    Caller::RevokedKey,
    Caller::Member,
    Caller::Publisher,
    Caller::Admin,
    Caller::OtherOrgAdmin,
    Caller::AdminSession,
    Caller::MemberSession,
];

const REVOKED_KEY: &str = "avk_fixture_acme_revoked_admin";
const ADMIN_SESSION_KEY: &str = "avk_fixture_acme_admin_session";
const MEMBER_SESSION_KEY: &str = "avk_fixture_acme_member_session";

impl Caller {
    fn key(self) -> Option<&'static str> {
        match self {
            Caller::NoKey => None,
            Caller::UnknownKey => Some("avk_never_minted_anywhere"),
            Caller::RevokedKey => Some(REVOKED_KEY),
            Caller::Member => Some(MEMBER_KEY),
            Caller::Publisher => Some(PUBLISHER_KEY),
            Caller::Admin => Some(ADMIN_KEY),
            Caller::OtherOrgAdmin => Some(OTHER_ORG_ADMIN_KEY),
            Caller::AdminSession => Some(ADMIN_SESSION_KEY),
            Caller::MemberSession => Some(MEMBER_SESSION_KEY),
        }
    }
}

/// Who may use a route.
#[derive(Debug, Clone, Copy)]
enum Access {
    /// Anyone, without a key.
    Open,
    /// Any valid key, of any organisation and role.
    AnyKey,
    Read,
    Write,
    Publish,
    /// Admin keys without an end: creating keys (portal sessions).
    Mint,
}

/// One row: the route (as `template.yaml` names it), its fixture, and what success is.
struct Route {
    key: &'static str,
    fixture: &'static str,
    access: Access,
    success: u16,
}

const ROUTES: &[Route] = &[
    Route {
        key: "POST /org/{org_slug}/webhooks/endpoints",
        fixture: "endpoints-create.json",
        access: Access::Write,
        success: 201,
    },
    Route {
        key: "GET /org/{org_slug}/webhooks/endpoints",
        fixture: "endpoints-list.json",
        access: Access::Read,
        success: 200,
    },
    Route {
        key: "GET /org/{org_slug}/webhooks/endpoints/{endpoint_id}",
        fixture: "endpoints-get.json",
        access: Access::Read,
        success: 200,
    },
    Route {
        key: "PATCH /org/{org_slug}/webhooks/endpoints/{endpoint_id}",
        fixture: "endpoints-update.json",
        access: Access::Write,
        success: 200,
    },
    Route {
        key: "DELETE /org/{org_slug}/webhooks/endpoints/{endpoint_id}",
        fixture: "endpoints-delete.json",
        access: Access::Write,
        success: 204,
    },
    Route {
        key: "POST /org/{org_slug}/webhooks/endpoints/{endpoint_id}/rotate-secret",
        fixture: "endpoints-rotate-secret.json",
        access: Access::Write,
        success: 200,
    },
    Route {
        key: "POST /org/{org_slug}/webhooks/endpoints/{endpoint_id}/test",
        fixture: "endpoints-test.json",
        access: Access::Write,
        success: 202,
    },
    Route {
        key: "GET /org/{org_slug}/webhooks/endpoints/{endpoint_id}/deliveries",
        fixture: "deliveries-list.json",
        access: Access::Read,
        success: 200,
    },
    Route {
        key: "GET /org/{org_slug}/webhooks/deliveries",
        fixture: "deliveries-search.json",
        access: Access::Read,
        success: 200,
    },
    Route {
        key: "GET /org/{org_slug}/webhooks/deliveries/{delivery_id}",
        fixture: "deliveries-get.json",
        access: Access::Read,
        success: 200,
    },
    Route {
        key: "POST /org/{org_slug}/webhooks/deliveries/{delivery_id}/retry",
        fixture: "deliveries-retry.json",
        access: Access::Write,
        success: 202,
    },
    Route {
        key: "GET /org/{org_slug}/webhooks/endpoints/{endpoint_id}/stats",
        fixture: "endpoints-stats.json",
        access: Access::Read,
        success: 200,
    },
    Route {
        key: "POST /org/{org_slug}/webhooks/endpoints/{endpoint_id}/recover",
        fixture: "endpoints-recover.json",
        access: Access::Write,
        success: 200,
    },
    Route {
        key: "GET /org/{org_slug}/webhooks/recoveries/{recovery_id}",
        fixture: "recoveries-get.json",
        access: Access::Read,
        success: 200,
    },
    Route {
        key: "POST /org/{org_slug}/webhooks/events",
        fixture: "events-publish.json",
        access: Access::Publish,
        success: 202,
    },
    Route {
        key: "POST /org/{org_slug}/webhooks/portal-sessions",
        fixture: "portal-sessions-create.json",
        access: Access::Mint,
        success: 201,
    },
    Route {
        key: "GET /key",
        fixture: "key-get.json",
        access: Access::AnyKey,
        success: 200,
    },
    Route {
        key: "GET /openapi.json",
        fixture: "openapi-get.json",
        access: Access::Open,
        success: 200,
    },
];

/// The status `caller` must get on `route`.
fn expected(route: &Route, caller: Caller) -> u16 {
    match (route.access, caller) {
        (Access::Open, _) => route.success,
        (_, Caller::NoKey | Caller::UnknownKey | Caller::RevokedKey) => 401,
        (Access::AnyKey, _) => route.success,
        // Another organisation's key finds nothing there.
        (_, Caller::OtherOrgAdmin) => 404,
        (
            Access::Read,
            Caller::Member | Caller::Admin | Caller::MemberSession | Caller::AdminSession,
        )
        | (Access::Write, Caller::Admin | Caller::AdminSession)
        | (Access::Publish, Caller::Publisher | Caller::Admin | Caller::AdminSession)
        | (Access::Mint, Caller::Admin) => route.success,
        _ => 403,
    }
}

/// What a case's path names: a fresh endpoint of `acme`, its one delivery (its test
/// event) and a recovery of it, for each case: a case may delete or change them.
struct Targets {
    endpoint: String,
    delivery: String,
    recovery: String,
}

async fn fresh_targets(store: &impl Store, router: &axum::Router) -> Targets {
    let endpoint = new_endpoint(store, "https://hooks.example.com/matrix", "alert.fired").await;
    let id = endpoint.id.to_string();
    let test = send(router, "endpoints-test.json", |e| {
        set_path(e, &format!("/org/acme/webhooks/endpoints/{id}/test"));
    })
    .await;
    assert_eq!(test.status, 202, "{}", test.json);
    let delivery = test.json["delivery_id"]
        .as_str()
        .expect("delivery id")
        .to_owned();
    let recovery = send(router, "endpoints-recover.json", |e| {
        set_path(e, &format!("/org/acme/webhooks/endpoints/{id}/recover"));
        set_body(e, &json!({"since": "2026-01-01T00:00:00Z"}).to_string());
    })
    .await;
    assert_eq!(recovery.status, 202, "{}", recovery.json);
    Targets {
        endpoint: id,
        delivery,
        recovery: recovery.json["recovery_id"]
            .as_str()
            .expect("recovery id")
            .to_owned(),
    }
}

/// The concrete path of `route` on org `acme` with these ids.
fn path_of(route: &Route, targets: &Targets) -> String {
    let path = route
        .key
        .split_once(' ')
        .map_or(route.key, |(_, path)| path);
    path.replace("{org_slug}", "acme")
        .replace("{endpoint_id}", &targets.endpoint)
        .replace("{delivery_id}", &targets.delivery)
        .replace("{recovery_id}", &targets.recovery)
}

fn body_of(route: &Route) -> Option<String> {
    let body = match route.fixture {
        "endpoints-create.json" => {
            json!({"url": "https://hooks.example.com/new", "event_types": ["alert.fired"]})
        }
        "endpoints-update.json" => json!({"description": "changed"}),
        "events-publish.json" => json!({"type": "alert.fired", "data": {"n": 1}}),
        _ => return None,
    };
    Some(body.to_string())
}

async fn every_caller_gets_exactly_its_status(store: Arc<impl Store>) {
    seed_keys(store.as_ref()).await;
    shared::key_admin::mint(
        store.as_ref(),
        &acme(),
        Role::Admin,
        Some(REVOKED_KEY.to_owned()),
        shared::domain::KeyStrength::Development,
    )
    .await
    .expect("mint");
    shared::key_admin::revoke(store.as_ref(), REVOKED_KEY)
        .await
        .expect("revoke");
    let admin = store
        .find_key(&shared::domain::KeyHash::of(ADMIN_KEY))
        .await
        .expect("find")
        .expect("the admin key");
    for (key, role) in [
        (ADMIN_SESSION_KEY, Role::Admin),
        (MEMBER_SESSION_KEY, Role::Member),
    ] {
        // As `key_admin::mint_session` stores one, with a token the cases can name.
        let mut session = shared::domain::ApiKey::new(key, &acme(), role, shared::domain::now());
        session.expires_at = Some(shared::domain::now() + chrono::TimeDelta::hours(1));
        session.parent_id = Some(admin.id);
        store.insert_key(&session).await.expect("session");
    }
    let r = router(store.clone());
    let mut checked = 0;
    for route in ROUTES {
        for caller in CALLERS {
            let targets = fresh_targets(store.as_ref(), &r).await;
            let path = path_of(route, &targets);
            let answer = send(&r, route.fixture, |e| {
                set_path(e, &path);
                if let Some(body) = body_of(route) {
                    set_body(e, &body);
                }
                set_key(e, caller.key());
            })
            .await;
            let want = expected(route, caller);
            assert_eq!(
                answer.status, want,
                "{} as {caller:?}: {}",
                route.key, answer.json
            );
            if want >= 400 {
                assert!(answer.json["error"]["code"].is_string(), "{}", answer.json);
            }
            checked += 1;
            // Gone after each case (a case may have deleted it already), so the
            // organisation stays under its endpoint limit however many cases there are.
            let id = targets.endpoint.parse().expect("endpoint id");
            store.delete_endpoint(&acme(), id).await.expect("delete");
        }
    }
    assert_eq!(checked, ROUTES.len() * CALLERS.len());
}

/// The matrix names every route the service serves (`template.yaml`), and no other;
/// the console's files need no key and are covered in `console_routes.rs`.
#[test]
fn every_route_is_in_the_matrix() {
    let in_matrix: BTreeSet<String> = ROUTES.iter().map(|r| r.key.to_owned()).collect();
    let api: BTreeSet<String> = template_routes()
        .into_iter()
        .filter(|r| !is_console_route(r))
        .collect();
    assert_eq!(in_matrix, api);
}

on_both_backends!(every_caller_gets_exactly_its_status);
