//! Checking API answers against an OpenAPI 3.1 document (the service's is
//! `docs/openapi.yaml`, served as JSON by `shared::api::openapi`).
//!
//! [`Contract::check`] takes one exchange (method, concrete path, status, headers, body)
//! and fails unless the document describes that answer exactly:
//!
//! 1. the operation is found by method and by matching the path against the path
//!    templates (`/org/{org_slug}/...`; with several matches, the one with the most literal
//!    segments wins, as OpenAPI says). A request that matches no operation is checked
//!    against the document's `x-unrouted-responses`: 404 for an unknown path, 405 for a
//!    known path with another method, never the other way round;
//! 2. the status must be listed for that operation, exactly (no `default`, no `4XX`);
//! 3. headers the response marks `required` must be present and match their schema;
//! 4. the `content-type` must be one of the response's media types, or the body empty if
//!    it has none;
//! 5. a JSON body must validate against the media type's schema (JSON Schema 2020-12,
//!    formats checked), and an error body's `code` must be one of the response's
//!    `x-error-codes` when it lists them.
//!
//! Schemas are validated with every `$ref` in place: the validator's root is a copy of the
//! whole document with a root `$ref` to the schema's JSON Pointer, so `#/components/...`
//! resolves as written. Each such validator is built once and cached.
//!
//! ```no_run
//! # fn demo(json_text: &str, headers: &hyper::HeaderMap) {
//! use testkit::openapi::Contract;
//! let contract = Contract::from_json(json_text).expect("a usable document");
//! contract
//!     .check("GET", "/org/acme/webhooks/endpoints", 200, headers, br#"{"endpoints":[]}"#)
//!     .unwrap_or_else(|v| panic!("{v}"));
//! # }
//! ```

use hyper::HeaderMap;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use thiserror::Error;

/// The document's HTTP methods, as OpenAPI names path item fields.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The root field listing answers to requests that match no operation.
const UNROUTED: &str = "x-unrouted-responses";

/// An OpenAPI document ready to check answers against.
pub struct Contract {
    document: Value,
    templates: Vec<Template>,
    /// Validators by the JSON Pointer of their schema, built on first use.
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

/// The document cannot be used at all.
#[derive(Debug, Error)]
pub enum ContractError {
    #[error("the OpenAPI document is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("the OpenAPI document has no `paths` object")]
    NoPaths,
}

/// An answer the document does not describe.
#[derive(Debug, Error)]
#[error("{method} {path} answered {status}: {problem}")]
pub struct Violation {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Boxed: a `Result` carrying a violation stays small on the happy path.
    pub problem: Box<Problem>,
}

#[derive(Debug, Error)]
pub enum Problem {
    #[error("status {status} is not documented for {operation} (documented: {documented:?})")]
    UndocumentedStatus {
        status: u16,
        operation: String,
        documented: Vec<String>,
    },
    #[error("header `{name}` is required by the document but {found}")]
    Header { name: String, found: String },
    #[error("content-type {got:?} is not one the document lists ({expected:?})")]
    ContentType {
        got: Option<String>,
        expected: Vec<String>,
    },
    #[error("the document describes no body, but one came: {body}")]
    UnexpectedBody { body: String },
    #[error("the body is not JSON ({error}): {body}")]
    NotJson { error: String, body: String },
    #[error("the body does not match {pointer}:\n{errors}\nbody: {body}")]
    Schema {
        pointer: String,
        errors: String,
        body: String,
    },
    #[error("error code {got:?} is not one of {allowed:?} that the document lists")]
    ErrorCode { got: Value, allowed: Vec<String> },
    #[error("the document itself is broken: {0}")]
    Document(String),
}

/// One response object of the document, with where it lives (for schema pointers).
struct Located<'a> {
    pointer: String,
    value: &'a Value,
}

impl Contract {
    pub fn from_json(text: &str) -> Result<Self, ContractError> {
        let document: Value = serde_json::from_str(text)?;
        let templates = document
            .get("paths")
            .and_then(Value::as_object)
            .ok_or(ContractError::NoPaths)?
            .keys()
            .map(|key| Template::parse(key))
            .collect();
        Ok(Self {
            document,
            templates,
            validators: Mutex::new(HashMap::new()),
        })
    }

    pub fn document(&self) -> &Value {
        &self.document
    }

    /// Every operation as (upper-case method, path template).
    pub fn operations(&self) -> BTreeSet<(String, String)> {
        let mut found = BTreeSet::new();
        for template in &self.templates {
            let item = &self.document["paths"][&template.key];
            for method in METHODS {
                if item.get(method).is_some() {
                    found.insert((method.to_uppercase(), template.key.clone()));
                }
            }
        }
        found
    }

    /// Follow a `$ref` to a place in this document (objects that are not references are
    /// returned as they are).
    pub fn resolve<'a>(&'a self, value: &'a Value) -> Result<&'a Value, Problem> {
        self.resolve_located(Located {
            pointer: String::new(),
            value,
        })
        .map(|l| l.value)
    }

    /// Check one answer; see the module documentation for what is checked.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), Violation> {
        self.check_answer(method, path, status, headers, body)
            .map_err(|problem| Violation {
                method: method.to_owned(),
                path: path.to_owned(),
                status,
                problem: Box::new(problem),
            })
    }

    fn check_answer(
        &self,
        method: &str,
        path: &str,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), Problem> {
        // HEAD is answered as GET without the body.
        let is_head = method.eq_ignore_ascii_case("head");
        let looked_up = if is_head {
            "get".to_owned()
        } else {
            method.to_ascii_lowercase()
        };
        let response = self.find_response(&looked_up, path, status)?;
        let response = self.resolve_located(response)?;
        self.check_headers(&response, headers)?;
        if is_head {
            return Ok(());
        }
        self.check_content(&response, headers, body)
    }

    /// The response object documented for this method, path and status.
    fn find_response(&self, method: &str, path: &str, status: u16) -> Result<Located<'_>, Problem> {
        let key = status.to_string();
        let template = self
            .templates
            .iter()
            .filter(|t| t.matches(path))
            .max_by_key(|t| t.literals());
        let operation =
            template.and_then(|t| self.document["paths"][&t.key].get(method).map(|op| (t, op)));
        let Some((template, operation)) = operation else {
            // Not an operation: an unknown path may only be 404, a known one only 405.
            let excluded = if template.is_some() { "404" } else { "405" };
            let unrouted = self.document.get(UNROUTED).and_then(Value::as_object);
            let documented: Vec<String> = unrouted
                .map(|m| m.keys().filter(|k| *k != excluded).cloned().collect())
                .unwrap_or_default();
            return match unrouted.and_then(|m| m.get(&key)) {
                Some(value) if key != excluded => Ok(Located {
                    pointer: format!("/{UNROUTED}/{key}"),
                    value,
                }),
                _ => Err(Problem::UndocumentedStatus {
                    status,
                    operation: match template {
                        Some(t) => format!("{} (no {method} operation)", t.key),
                        None => "an unknown path".to_owned(),
                    },
                    documented,
                }),
            };
        };
        let responses = operation.get("responses").and_then(Value::as_object);
        match responses.and_then(|r| r.get(&key)) {
            Some(value) => Ok(Located {
                pointer: format!(
                    "/paths/{}/{method}/responses/{key}",
                    escape_pointer(&template.key)
                ),
                value,
            }),
            None => Err(Problem::UndocumentedStatus {
                status,
                operation: format!("{} {}", method.to_uppercase(), template.key),
                documented: responses
                    .map(|r| r.keys().cloned().collect())
                    .unwrap_or_default(),
            }),
        }
    }

    /// Follow `$ref`s (only local ones, `#/...`) until an object that is not one.
    fn resolve_located<'a>(&'a self, mut at: Located<'a>) -> Result<Located<'a>, Problem> {
        for _ in 0..16 {
            let Some(reference) = at.value.get("$ref").and_then(Value::as_str) else {
                return Ok(at);
            };
            let pointer = reference
                .strip_prefix('#')
                .ok_or_else(|| Problem::Document(format!("non-local $ref {reference:?}")))?;
            let value = self
                .document
                .pointer(pointer)
                .ok_or_else(|| Problem::Document(format!("dangling $ref {reference:?}")))?;
            at = Located {
                pointer: pointer.to_owned(),
                value,
            };
        }
        Err(Problem::Document("a $ref chain longer than 16".into()))
    }

    fn check_headers(&self, response: &Located<'_>, headers: &HeaderMap) -> Result<(), Problem> {
        let Some(documented) = response.value.get("headers").and_then(Value::as_object) else {
            return Ok(());
        };
        for (name, header) in documented {
            let header = self.resolve_located(Located {
                pointer: format!("{}/headers/{}", response.pointer, escape_pointer(name)),
                value: header,
            })?;
            if header.value.get("required") != Some(&Value::Bool(true)) {
                continue;
            }
            let Some(value) = headers.get(name.as_str()) else {
                return Err(Problem::Header {
                    name: name.clone(),
                    found: "absent".into(),
                });
            };
            let text = value.to_str().map_err(|_| Problem::Header {
                name: name.clone(),
                found: "not text".into(),
            })?;
            if header.value.get("schema").is_some() {
                self.validate(
                    &format!("{}/schema", header.pointer),
                    &Value::String(text.to_owned()),
                )
                .map_err(|errors| Problem::Header {
                    name: name.clone(),
                    found: format!("{text:?}, which breaks its schema: {errors}"),
                })?;
            }
        }
        Ok(())
    }

    fn check_content(
        &self,
        response: &Located<'_>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), Problem> {
        let Some(content) = response.value.get("content").and_then(Value::as_object) else {
            return if body.is_empty() {
                Ok(())
            } else {
                Err(Problem::UnexpectedBody {
                    body: excerpt(body),
                })
            };
        };
        let got = headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(essence);
        let Some((media_type, media)) = got.as_deref().and_then(|g| content.get_key_value(g))
        else {
            return Err(Problem::ContentType {
                got,
                expected: content.keys().cloned().collect(),
            });
        };
        if !(media_type == "application/json" || media_type.ends_with("+json")) {
            return Ok(());
        }
        let json: Value = serde_json::from_slice(body).map_err(|e| Problem::NotJson {
            error: e.to_string(),
            body: excerpt(body),
        })?;
        if media.get("schema").is_some() {
            let pointer = format!(
                "{}/content/{}/schema",
                response.pointer,
                escape_pointer(media_type)
            );
            self.validate(&pointer, &json)
                .map_err(|errors| Problem::Schema {
                    pointer: pointer.clone(),
                    errors,
                    body: excerpt(body),
                })?;
        }
        if let Some(codes) = response
            .value
            .get("x-error-codes")
            .and_then(Value::as_array)
        {
            let got = &json["error"]["code"];
            if !codes.contains(got) {
                return Err(Problem::ErrorCode {
                    got: got.clone(),
                    allowed: codes
                        .iter()
                        .filter_map(|c| c.as_str().map(str::to_owned))
                        .collect(),
                });
            }
        }
        Ok(())
    }

    /// Validate `instance` against the schema at `pointer`; the errors, one per line.
    fn validate(&self, pointer: &str, instance: &Value) -> Result<(), String> {
        let validator = self.validator(pointer).map_err(|e| e.to_string())?;
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .take(10)
            .map(|e| {
                let message = shorten(&e.to_string(), 300);
                format!("  at {:?}: {message}", e.instance_path().to_string())
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }

    fn validator(&self, pointer: &str) -> Result<Arc<jsonschema::Validator>, Problem> {
        let mut cache = self
            .validators
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(v) = cache.get(pointer) {
            return Ok(v.clone());
        }
        let mut root = self.document.clone();
        root["$ref"] = Value::String(format!("#{}", encode_fragment(pointer)));
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .map_err(|e| Problem::Document(format!("schema at {pointer}: {e}")))?;
        let validator = Arc::new(validator);
        cache.insert(pointer.to_owned(), validator.clone());
        Ok(validator)
    }
}

/// A path template split into segments: literal text or `{name}`.
struct Template {
    key: String,
    segments: Vec<Option<String>>,
}

impl Template {
    fn parse(key: &str) -> Self {
        let segments = key
            .split('/')
            .map(|s| {
                let is_param = s.starts_with('{') && s.ends_with('}') && s.len() > 2;
                (!is_param).then(|| s.to_owned())
            })
            .collect();
        Self {
            key: key.to_owned(),
            segments,
        }
    }

    /// A parameter matches one non-empty segment; literals match exactly.
    fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        parts.len() == self.segments.len()
            && self
                .segments
                .iter()
                .zip(&parts)
                .all(|(seg, part)| match seg {
                    Some(literal) => literal == part,
                    None => !part.is_empty(),
                })
    }

    fn literals(&self) -> usize {
        self.segments.iter().filter(|s| s.is_some()).count()
    }
}

/// A JSON Pointer reference token (RFC 6901): `~` as `~0`, `/` as `~1`.
fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// A JSON Pointer as a URI fragment: characters a fragment may not hold (`{`, `}`, ...)
/// percent-encoded, so `$ref` parses as a URI.
fn encode_fragment(pointer: &str) -> String {
    let mut out = String::with_capacity(pointer.len());
    for b in pointer.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `application/json; charset=utf-8` → `application/json`.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The start of a body, for messages.
fn excerpt(body: &[u8]) -> String {
    shorten(&String::from_utf8_lossy(body), 2_000)
}

/// At most `max` characters of `text`, saying how long it was when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}… ({} bytes in all)", &text[..cut], text.len()),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::{CONTENT_TYPE, HeaderValue};
    use serde_json::json;

    /// A small document with what the service's uses: templates, `$ref`s to shared
    /// responses and schemas, a required header, error codes, a body-less answer.
    fn contract() -> Contract {
        let doc = json!({
            "openapi": "3.1.0",
            "x-unrouted-responses": {
                "404": {"$ref": "#/components/responses/Error"},
                "405": {"$ref": "#/components/responses/Error"}
            },
            "paths": {
                "/things/{id}": {
                    "get": {"responses": {
                        "200": {"content": {"application/json": {"schema": {
                            "$ref": "#/components/schemas/Thing"}}}},
                        "401": {
                            "$ref": "#/components/responses/Error",
                        },
                        "404": {"$ref": "#/components/responses/NotFound"}
                    }},
                    "delete": {"responses": {"204": {"description": "gone"}}}
                },
                "/things/special": {
                    "get": {"responses": {"200": {"content": {"text/plain": {}}}}}
                }
            },
            "components": {
                "responses": {
                    "Error": {
                        "headers": {"WWW-Authenticate": {"required": true,
                            "schema": {"const": "Bearer"}}},
                        "content": {"application/json": {"schema": {"type": "object"}}}
                    },
                    "NotFound": {
                        "x-error-codes": ["not_found"],
                        "content": {"application/json": {"schema": {"type": "object"}}}
                    }
                },
                "schemas": {"Thing": {
                    "type": "object",
                    "required": ["id", "at"],
                    "additionalProperties": false,
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "at": {"type": "string", "format": "date-time"}
                    }
                }}
            }
        });
        Contract::from_json(&doc.to_string()).expect("contract")
    }

    fn json_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h
    }

    const THING: &str = "/things/0193a5c2-7d1e-7a00-8000-00000000e001";
    const GOOD: &[u8] =
        br#"{"id": "0193a5c2-7d1e-7a00-8000-00000000e001", "at": "2026-11-27T08:00:00.000Z"}"#;

    fn problem(result: Result<(), Violation>) -> Problem {
        *result.expect_err("a violation").problem
    }

    #[test]
    fn documented_answers_pass() {
        let c = contract();
        c.check("GET", THING, 200, &json_headers(), GOOD)
            .expect("valid");
        c.check("DELETE", THING, 204, &HeaderMap::new(), b"")
            .expect("no body");
        c.check("HEAD", THING, 200, &json_headers(), b"")
            .expect("head as get");
        let mut text = HeaderMap::new();
        text.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        c.check("GET", "/things/special", 200, &text, b"hello")
            .expect("the literal template wins");
        let mut auth = json_headers();
        auth.insert("www-authenticate", HeaderValue::from_static("Bearer"));
        c.check("GET", THING, 401, &auth, b"{}").expect("header");
        c.check(
            "GET",
            THING,
            404,
            &json_headers(),
            br#"{"error":{"code":"not_found"}}"#,
        )
        .expect("listed code");
        c.check("PUT", THING, 405, &auth, b"{}")
            .expect("wrong method");
        c.check("GET", "/nothing", 404, &auth, b"{}")
            .expect("unknown path");
        assert_eq!(
            c.operations().into_iter().collect::<Vec<_>>(),
            [
                ("DELETE".to_owned(), "/things/{id}".to_owned()),
                ("GET".to_owned(), "/things/special".to_owned()),
                ("GET".to_owned(), "/things/{id}".to_owned()),
            ]
        );
    }

    #[test]
    fn every_kind_of_mismatch_is_caught() {
        let c = contract();
        let h = json_headers();
        assert!(matches!(
            problem(c.check("GET", THING, 418, &h, GOOD)),
            Problem::UndocumentedStatus { .. }
        ));
        assert!(matches!(
            problem(c.check("GET", "/nothing", 405, &h, b"{}")),
            Problem::UndocumentedStatus { .. }
        ));
        assert!(matches!(
            problem(c.check("PUT", THING, 404, &h, b"{}")),
            Problem::UndocumentedStatus { .. }
        ));
        assert!(matches!(
            problem(c.check("GET", "/things/", 200, &h, GOOD)),
            Problem::UndocumentedStatus { .. }
        ));
        assert!(matches!(
            problem(c.check("GET", THING, 200, &HeaderMap::new(), GOOD)),
            Problem::ContentType { .. }
        ));
        assert!(matches!(
            problem(c.check("GET", THING, 200, &h, b"{")),
            Problem::NotJson { .. }
        ));
        for bad in [
            r#"{"id": "not-a-uuid", "at": "2026-11-27T08:00:00.000Z"}"#,
            r#"{"id": "0193a5c2-7d1e-7a00-8000-00000000e001", "at": "yesterday"}"#,
            r#"{"id": "0193a5c2-7d1e-7a00-8000-00000000e001"}"#,
            r#"{"id": "0193a5c2-7d1e-7a00-8000-00000000e001", "at": "2026-11-27T08:00:00.000Z", "x": 1}"#,
        ] {
            assert!(
                matches!(
                    problem(c.check("GET", THING, 200, &h, bad.as_bytes())),
                    Problem::Schema { .. }
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            problem(c.check("DELETE", THING, 204, &h, b"{}")),
            Problem::UnexpectedBody { .. }
        ));
        assert!(matches!(
            problem(c.check("GET", THING, 401, &h, b"{}")),
            Problem::Header { .. }
        ));
        let mut basic = json_headers();
        basic.insert("www-authenticate", HeaderValue::from_static("Basic"));
        assert!(matches!(
            problem(c.check("GET", THING, 401, &basic, b"{}")),
            Problem::Header { .. }
        ));
        assert!(matches!(
            problem(c.check("GET", THING, 404, &h, br#"{"error":{"code":"gone"}}"#)),
            Problem::ErrorCode { .. }
        ));
    }

    #[test]
    fn pointers_escape_as_rfc_6901_and_fragments_encode() {
        assert_eq!(escape_pointer("/a~b/{c}"), "~1a~0b~1{c}");
        assert_eq!(encode_fragment("/paths/~1a~1{b}"), "/paths/~1a~1%7Bb%7D");
        assert_eq!(
            essence("Application/JSON; charset=utf-8"),
            "application/json"
        );
    }
}
