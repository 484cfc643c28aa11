//! docs/openapi.yaml against the code: the operations it lists are the routes served,
//! and its error answers follow the rules every route shares. (Every answer of the whole
//! suite is validated against it too, in `common::call`.)

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeSet;

/// The document lists exactly the routes `template.yaml` wires to API Gateway, which are
/// the routes the router serves (`fixtures.rs` keeps fixtures and template equal, and
/// `the_router_serves_every_documented_operation` probes each one).
#[test]
fn the_document_lists_exactly_the_template_routes() {
    let documented: BTreeSet<String> = CONTRACT
        .operations()
        .into_iter()
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    let api: BTreeSet<String> = template_routes()
        .into_iter()
        .filter(|r| !is_console_route(r))
        .collect();
    assert_eq!(documented, api);
}

/// A concrete path for a template: the fixtures' org and endpoint id for every parameter.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|segment| match segment {
            "{org_slug}" => "acme",
            s if s.starts_with('{') => FIXTURE_ENDPOINT_ID,
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn is_public(operation: &Value) -> bool {
    operation["security"] == Value::Array(Vec::new())
}

/// Every documented operation reaches a handler (not the 404/405 fallbacks): without a
/// key each answers 401, and the public one 200. `call` checks each answer too.
#[tokio::test]
async fn the_router_serves_every_documented_operation() {
    let store = memory().await;
    seed_keys(store.as_ref()).await;
    let r = router(store);
    for (method, template) in CONTRACT.operations() {
        let operation = &CONTRACT.document()["paths"][&template][method.to_lowercase()];
        let a = send(&r, "endpoints-list.json", |e| {
            set_method(e, &method);
            set_path(e, &concrete(&template));
            set_key(e, None);
        })
        .await;
        let expected = if is_public(operation) { 200 } else { 401 };
        assert_eq!(a.status, expected, "{method} {template}: {}", a.json);
    }
}

/// The document takes no query parameters either.
#[tokio::test]
async fn the_document_route_refuses_query_parameters() {
    let r = router(memory().await);
    let a = send(&r, "openapi-get.json", |e| {
        e["rawQueryString"] = "format=yaml".into();
    })
    .await;
    assert_error(&a, 400, "bad_request");
    assert_eq!(a.json["error"]["field"], "format");
}

/// Rules every operation shares: a 401 (with `WWW-Authenticate`) unless the operation is
/// public, a 413 (bodies are capped before anything else), and every error answer in
/// the one `Error` shape with the codes it may carry listed.
#[test]
fn every_operation_documents_the_shared_errors() {
    let doc = CONTRACT.document();
    let mut errors_seen = 0;
    for (method, template) in CONTRACT.operations() {
        let name = format!("{method} {template}");
        let operation = &doc["paths"][&template][method.to_lowercase()];
        let responses = operation["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{name} has responses"));
        if is_public(operation) {
            assert!(!responses.contains_key("401"), "{name} needs no key");
        } else {
            let unauthorized = CONTRACT.resolve(&responses["401"]).expect("401 resolves");
            assert_eq!(
                unauthorized["headers"]["WWW-Authenticate"]["required"], true,
                "{name}: 401 documents `WWW-Authenticate: Bearer`"
            );
        }
        assert!(responses.contains_key("413"), "{name} documents 413");
        for (status, response) in responses {
            let code: u16 = status.parse().expect("statuses are numbers");
            if code >= 400 {
                assert_error_response(&format!("{name} {status}"), response);
                errors_seen += 1;
            }
        }
    }
    let unrouted = doc["x-unrouted-responses"]
        .as_object()
        .expect("x-unrouted-responses");
    assert!(unrouted.contains_key("404") && unrouted.contains_key("405"));
    for (status, response) in unrouted {
        assert_error_response(&format!("unrouted {status}"), response);
    }
    assert!(errors_seen > 50, "only {errors_seen} error answers checked");
}

fn assert_error_response(name: &str, response: &Value) {
    let response = CONTRACT
        .resolve(response)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        response["content"],
        serde_json::json!({"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}),
        "{name} uses the shared error schema"
    );
    let codes = response["x-error-codes"]
        .as_array()
        .unwrap_or_else(|| panic!("{name} lists its x-error-codes"));
    assert!(
        !codes.is_empty() && codes.iter().all(Value::is_string),
        "{name}: {codes:?}"
    );
}

/// The check has teeth on real answers: against a copy of the document missing one
/// status, or with a schema the answer breaks, the same answers are refused.
#[tokio::test]
async fn real_answers_fail_against_a_document_that_lacks_them() {
    use testkit::openapi::{Contract, Problem};
    let store = memory().await;
    seed_keys(store.as_ref()).await;
    let r = router(store);
    let list = "/org/{org_slug}/webhooks/endpoints";
    let mut doc = CONTRACT.document().clone();
    doc["paths"][list]["get"]["responses"]
        .as_object_mut()
        .expect("responses")
        .remove("401");
    doc["components"]["schemas"]["Endpoint"]["properties"]
        .as_object_mut()
        .expect("properties")
        .remove("is_active");
    let lacking = Contract::from_json(&doc.to_string()).expect("still a document");
    let check = |a: &Answer| {
        let body = serde_json::to_vec(&a.json).expect("JSON");
        let violation = lacking
            .check(
                "GET",
                "/org/acme/webhooks/endpoints",
                a.status,
                &a.headers,
                &body,
            )
            .expect_err("refused");
        *violation.problem
    };

    let anonymous = send(&r, "endpoints-list.json", |e| set_key(e, None)).await;
    assert_eq!(anonymous.status, 401);
    assert!(matches!(
        check(&anonymous),
        Problem::UndocumentedStatus { .. }
    ));

    assert_eq!(send(&r, "endpoints-create.json", |_| {}).await.status, 201);
    let listed = send(&r, "endpoints-list.json", |_| {}).await;
    assert_eq!(listed.status, 200);
    assert!(matches!(check(&listed), Problem::Schema { .. }));
}
