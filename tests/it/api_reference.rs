//! docs/API.md, the reference for people, against docs/openapi.yaml (as the service serves
//! it: `CONTRACT`) and against the code's own error codes. The reference must name every
//! operation (with its roles and success status on one line), every parameter (with its
//! limits and default on one line), every field of every schema, the limits of every
//! request field, every enum value and every error code (with its status on one line).
//! So a route, value or code added to the document without its line in API.md fails here.

use crate::common::*;
use serde_json::{Map, Value};
use shared::api::{ApiError, Forbidden};
use shared::domain::{Role, ValidationError};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// The line the reference opens with, naming this test.
const MARKER: &str = "Checked against docs/openapi.yaml by tests/it/api_reference.rs";

fn reference() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/API.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `text` in backticks, as the reference writes names and values.
fn code(text: &str) -> String {
    format!("`{text}`")
}

/// Whether one line of `md` holds every one of `parts`.
fn some_line_has(md: &str, parts: &[String]) -> bool {
    md.lines()
        .any(|line| parts.iter().all(|part| line.contains(part.as_str())))
}

/// Every object in `value`, depth first.
fn walk(value: &Value, visit: &mut impl FnMut(&Map<String, Value>)) {
    match value {
        Value::Object(map) => {
            visit(map);
            for child in map.values() {
                walk(child, visit);
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, visit);
            }
        }
        _ => {}
    }
}

/// Every string of every `enum` in the document.
fn enum_values(doc: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    walk(doc, &mut |map: &Map<String, Value>| {
        if let Some(values) = map.get("enum").and_then(Value::as_array) {
            found.extend(values.iter().filter_map(Value::as_str).map(str::to_owned));
        }
    });
    found
}

/// Every property name of every schema in the document.
fn property_names(doc: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    walk(doc, &mut |map: &Map<String, Value>| {
        if let Some(properties) = map.get("properties").and_then(Value::as_object) {
            found.extend(properties.keys().cloned());
        }
    });
    found
}

fn is_public(operation: &Value) -> bool {
    operation["security"] == Value::Array(Vec::new())
}

/// The roles an operation's description names: the backticked words after "Role: " or
/// "Roles: ", up to the end of that sentence.
fn roles_of(operation: &Value) -> Vec<String> {
    let description = operation["description"].as_str().unwrap_or_default();
    let start = ["Role: ", "Roles: "]
        .into_iter()
        .find_map(|label| description.find(label).map(|at| at + label.len()));
    let Some(start) = start else {
        return Vec::new();
    };
    let sentence = description[start..].split('.').next().unwrap_or_default();
    sentence
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Every error code the document lists (`x-error-codes`), with the statuses it is
/// listed under: the operations' responses and the answers to unrouted requests.
fn documented_error_codes() -> BTreeMap<String, BTreeSet<String>> {
    let doc = CONTRACT.document();
    let mut responses: Vec<(String, Value)> = Vec::new();
    for (method, path) in CONTRACT.operations() {
        let operation = &doc["paths"][&path][method.to_lowercase()];
        for (status, response) in operation["responses"].as_object().into_iter().flatten() {
            responses.push((status.clone(), response.clone()));
        }
    }
    for (status, response) in doc["x-unrouted-responses"]
        .as_object()
        .into_iter()
        .flatten()
    {
        responses.push((status.clone(), response.clone()));
    }
    let mut codes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (status, response) in &responses {
        let response = CONTRACT
            .resolve(response)
            .unwrap_or_else(|e| panic!("response {status}: {e}"));
        for listed in response["x-error-codes"].as_array().into_iter().flatten() {
            if let Some(listed) = listed.as_str() {
                codes
                    .entry(listed.to_owned())
                    .or_default()
                    .insert(status.clone());
            }
        }
    }
    codes
}

/// Everything `md` lacks, one message each (empty when it is complete).
fn missing(md: &str) -> Vec<String> {
    let doc = CONTRACT.document();
    let mut missing = Vec::new();
    let mut need = |present: bool, what: String| {
        if !present {
            missing.push(what);
        }
    };

    need(md.contains(MARKER), format!("the line {MARKER:?}"));

    // Operations: the route in backticks, its roles and its success status on one line.
    let known_roles: BTreeSet<&str> = [Role::Admin, Role::Member, Role::Publisher]
        .into_iter()
        .map(Role::as_str)
        .collect();
    for (method, path) in CONTRACT.operations() {
        let route = format!("{method} {path}");
        let operation = &doc["paths"][&path][method.to_lowercase()];
        let mut parts = vec![code(&route)];
        if !is_public(operation) {
            let roles = roles_of(operation);
            need(
                !roles.is_empty() && roles.iter().all(|r| known_roles.contains(r.as_str())),
                format!("{route}: docs/openapi.yaml names its roles (`Role: ...`), got {roles:?}"),
            );
            parts.extend(roles.iter().map(String::as_str).map(code));
        }
        let successes: Vec<&String> = operation["responses"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(status, _)| status)
            .filter(|status| status.starts_with('2'))
            .collect();
        need(
            !successes.is_empty(),
            format!("{route}: a success status in docs/openapi.yaml"),
        );
        parts.extend(successes.into_iter().cloned());
        need(
            some_line_has(md, &parts),
            format!("route {route}: one line with {parts:?}"),
        );

        // Parameters: the name, and on one line with it each of its numeric bounds.
        let item = &doc["paths"][&path];
        for list in [&item["parameters"], &operation["parameters"]] {
            for parameter in list.as_array().into_iter().flatten() {
                let parameter = CONTRACT
                    .resolve(parameter)
                    .unwrap_or_else(|e| panic!("{route}: {e}"));
                let name = parameter["name"].as_str().unwrap_or_default();
                need(!name.is_empty(), format!("{route}: a parameter has a name"));
                need(md.contains(&code(name)), format!("parameter `{name}`"));
                for key in ["minimum", "maximum", "default", "minLength", "maxLength"] {
                    if let Some(bound) = parameter["schema"].get(key).and_then(Value::as_u64) {
                        need(
                            some_line_has(md, &[code(name), bound.to_string()]),
                            format!("parameter `{name}` with its {key} {bound} on one line"),
                        );
                    }
                }
            }
        }

        // Request bodies: each field's upper limit on one line with the field.
        let body = &operation["requestBody"];
        if body.is_object() {
            let body = CONTRACT
                .resolve(body)
                .unwrap_or_else(|e| panic!("{route}: {e}"));
            let schema = CONTRACT
                .resolve(&body["content"]["application/json"]["schema"])
                .unwrap_or_else(|e| panic!("{route}: {e}"));
            let properties = schema["properties"].as_object();
            need(
                properties.is_some_and(|p| !p.is_empty()),
                format!("{route}: its body schema lists properties"),
            );
            for (name, property) in properties.into_iter().flatten() {
                let property = CONTRACT
                    .resolve(property)
                    .unwrap_or_else(|e| panic!("{route} `{name}`: {e}"));
                for key in ["maxLength", "maxItems", "maximum"] {
                    if let Some(limit) = property.get(key).and_then(Value::as_u64) {
                        need(
                            some_line_has(md, &[code(name), limit.to_string()]),
                            format!(
                                "request field `{name}` of {route} with its {key} {limit} on one line"
                            ),
                        );
                    }
                }
            }
        }
    }

    // Every field of every schema, every enum value, every error code with its status.
    for name in property_names(doc) {
        need(md.contains(&code(&name)), format!("field `{name}`"));
    }
    for value in enum_values(doc) {
        need(md.contains(&code(&value)), format!("enum value `{value}`"));
    }
    for (listed, statuses) in documented_error_codes() {
        for status in statuses {
            need(
                some_line_has(md, &[code(&listed), status.clone()]),
                format!("error code `{listed}` with status {status} on one line"),
            );
        }
    }
    missing
}

#[test]
fn the_reference_covers_the_document() {
    let doc = CONTRACT.document();
    // The walks found something to check, so the test cannot pass vacuously.
    assert!(CONTRACT.operations().len() >= 11, "operations");
    assert!(enum_values(doc).contains("succeeded"), "enums are found");
    assert!(
        property_names(doc).contains("event_types"),
        "fields are found"
    );
    assert!(
        documented_error_codes().contains_key("publish_in_progress"),
        "error codes are found"
    );
    let missing = missing(&reference());
    assert!(
        missing.is_empty(),
        "docs/API.md lacks, from docs/openapi.yaml:\n  {}",
        missing.join("\n  ")
    );
}

/// Every error the API's code can make (`ApiError`), listed so that a new variant does not
/// compile until it is added here, with the status the document gives its code.
fn every_api_error() -> Vec<(ApiError, u16)> {
    let all = vec![
        ApiError::bad_request("x"),
        ApiError::Unauthorized,
        ApiError::Forbidden(Forbidden::Role),
        ApiError::NotFound,
        ApiError::MethodNotAllowed,
        ApiError::PayloadTooLarge { limit: 1 },
        ApiError::Validation(ValidationError::new("url", "x")),
        ApiError::EndpointLimitReached { limit: 1 },
        ApiError::EventIdReused,
        ApiError::PublishInProgress {
            retry_after_secs: 1,
        },
        ApiError::RecoveryRunning(uuid::Uuid::nil()),
        ApiError::Overloaded {
            retry_after_secs: 1,
        },
        ApiError::Internal,
    ];
    all.into_iter()
        .map(|error| {
            let status = match &error {
                ApiError::BadRequest { .. } => 400,
                ApiError::Unauthorized => 401,
                ApiError::Forbidden(_) => 403,
                ApiError::NotFound => 404,
                ApiError::MethodNotAllowed => 405,
                ApiError::EventIdReused
                | ApiError::PublishInProgress { .. }
                | ApiError::RecoveryRunning(_) => 409,
                ApiError::PayloadTooLarge { .. } => 413,
                ApiError::Validation(_) | ApiError::EndpointLimitReached { .. } => 422,
                ApiError::Internal => 500,
                ApiError::Overloaded { .. } => 503,
            };
            (error, status)
        })
        .collect()
}

/// The codes the code answers with are the document's, under the same status, and the
/// reference lists each with that status.
#[test]
fn every_error_code_the_code_makes_is_documented_and_referenced() {
    let documented = documented_error_codes();
    let md = reference();
    let all = every_api_error();
    let distinct: BTreeSet<&str> = all.iter().map(|(error, _)| error.code()).collect();
    assert_eq!(distinct.len(), all.len(), "one code per variant");
    for (error, status) in &all {
        let name = error.code();
        assert_eq!(error.status().as_u16(), *status, "{name}");
        let status = status.to_string();
        assert!(
            documented.get(name).is_some_and(|s| s.contains(&status)),
            "docs/openapi.yaml lists `{name}` under {status}: {documented:?}"
        );
        assert!(
            some_line_has(&md, &[code(name), status.clone()]),
            "docs/API.md has `{name}` and {status} on one line"
        );
    }
}

/// The check has teeth: the reference without the lines naming a route, an enum value,
/// an error code or a parameter is refused, naming what went.
#[test]
fn a_reference_lacking_a_line_is_refused() {
    let md = reference();
    for (dropped, named) in [
        (
            "`DELETE /org/{org_slug}/webhooks/endpoints/{endpoint_id}`",
            "DELETE /org/{org_slug}/webhooks/endpoints/{endpoint_id}",
        ),
        ("`GET /openapi.json`", "GET /openapi.json"),
        ("`paused`", "`paused`"),
        ("`blocked_address`", "`blocked_address`"),
        ("`event_id_reused`", "`event_id_reused`"),
        ("`per_page`", "`per_page`"),
        ("`response_body`", "`response_body`"),
        (MARKER, MARKER),
    ] {
        assert!(md.contains(dropped), "the reference has {dropped}");
        let lacking = md
            .lines()
            .filter(|line| !line.contains(dropped))
            .collect::<Vec<_>>()
            .join("\n");
        let missing = missing(&lacking);
        assert!(
            missing.iter().any(|m| m.contains(named)),
            "without {dropped}: {missing:?}"
        );
    }
}

#[test]
fn roles_are_read_from_descriptions() {
    let op = |d: &str| serde_json::json!({ "description": d });
    assert_eq!(roles_of(&op("Takes no body. Role: `admin`.")), ["admin"]);
    assert_eq!(
        roles_of(&op("Newest first. Roles: `admin`, `member`. More `x`.")),
        ["admin", "member"]
    );
    assert!(roles_of(&op("Needs no API key.")).is_empty());
}
