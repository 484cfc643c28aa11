//! Request bodies: every one is read (up to 512 KiB) before any handler runs, and JSON
//! bodies are turned into precise errors: 413 past the size cap, 400 for bytes that are
//! not a JSON object or for an unknown field, 422 naming the field for a value of the
//! wrong type. A handler takes its body as [`ValidJson`], its last argument.

use crate::api::error::ApiError;
use crate::domain::ValidationError;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{Map, Value};

/// Request bodies are capped at 512 KiB (`docs/API.md`, limits).
pub const MAX_BODY_BYTES: usize = 512 * 1024;

/// Read a whole body, refusing it past [`MAX_BODY_BYTES`].
pub async fn read_capped(body: Body) -> Result<Bytes, ApiError> {
    Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|err| {
            if err.downcast_ref::<LengthLimitError>().is_some() {
                ApiError::PayloadTooLarge {
                    limit: MAX_BODY_BYTES,
                }
            } else {
                ApiError::bad_request("the request body could not be read")
            }
        })
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Middleware for every route: the body is read in full, up to the cap, before the
/// handler runs. So an oversized body is refused (413) before anything happens, on
/// routes that take no body too; and a request refused early (401, 404) has had its
/// body drained, so a pooled client can reuse the connection. When a body is refused
/// unread, the answer says `Connection: close`: the rest of it is never read.
pub async fn buffer_body(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let read = if declared_length(&parts.headers).is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        })
    } else {
        read_capped(body).await
    };
    match read {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(err) => {
            let mut response = err.into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

/// The fields of a JSON object body, taken one by one; whatever is left is unknown.
pub struct JsonFields(Map<String, Value>);

impl JsonFields {
    fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(ApiError::bad_request(
                "the request body must be a JSON object",
            )),
            Err(e) => Err(ApiError::bad_request(format!("malformed JSON: {e}"))),
        }
    }

    /// A string field that may not be `null`.
    pub fn string(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        match self.0.remove(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(wrong_type(name, "a string")),
        }
    }

    /// A string field that may be `null`: `Some(None)` is an explicit `null`.
    pub fn nullable_string(&mut self, name: &str) -> Result<Option<Option<String>>, ApiError> {
        match self.0.remove(name) {
            Some(Value::Null) => Ok(Some(None)),
            Some(other) => {
                self.0.insert(name.to_owned(), other);
                self.string(name).map(|s| s.map(Some))
            }
            None => Ok(None),
        }
    }

    pub fn string_list(&mut self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.0.remove(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(wrong_type(&format!("{name}[{i}]"), "a string")),
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(wrong_type(name, "an array of strings")),
        }
    }

    /// Any JSON value (including `null`).
    pub fn value(&mut self, name: &str) -> Option<Value> {
        self.0.remove(name)
    }

    /// A whole number from 0 to `u32::MAX`; `106.0` is one too (JSON Schema counts a
    /// number with no fraction as an integer).
    pub fn whole_number(&mut self, name: &str) -> Result<Option<u32>, ApiError> {
        match self.0.remove(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(f))
                        .map(|f| f as u64)
                })
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| wrong_type(name, "a whole number")),
            Some(_) => Err(wrong_type(name, "a whole number")),
        }
    }

    pub fn bool(&mut self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.0.remove(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(wrong_type(name, "true or false")),
        }
    }

    /// Fail on the first field nobody took (in key order, so the answer is stable): a
    /// 400 naming it, as for an unknown query parameter, so a typo never passes silently.
    fn finish(self) -> Result<(), ApiError> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(unknown) => Err(ApiError::unknown_field(unknown)),
        }
    }
}

/// A request body read from a JSON object, in two steps around the check for unknown
/// fields: [`take`](Self::take) takes each field the route knows, checking its JSON type
/// (422 naming it), then any field left over is refused (400 naming it), then
/// [`check`](Self::check) applies the rules to the values (422 naming the field).
pub trait FromJson: Sized {
    /// The fields as given.
    type Given;
    fn take(fields: &mut JsonFields) -> Result<Self::Given, ApiError>;
    fn check(given: Self::Given) -> Result<Self, ApiError>;
}

/// A route's JSON body, typed and checked; no field it does not know passes.
pub struct ValidJson<T>(pub T);

impl<S: Send + Sync, T: FromJson> FromRequest<S> for ValidJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        from_json(&read_capped(request.into_body()).await?).map(Self)
    }
}

/// A body's bytes as `T`: a JSON object, no unknown field, valid values.
pub fn from_json<T: FromJson>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut fields = JsonFields::parse(bytes)?;
    let given = T::take(&mut fields)?;
    fields.finish()?;
    T::check(given)
}

pub fn required<T>(value: Option<T>, name: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ValidationError::new(name, "is required").into())
}

fn wrong_type(name: &str, expected: &str) -> ApiError {
    ValidationError::new(name, format!("must be {expected}")).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        for (raw, status) in [
            ("", 400),
            ("   ", 400),
            ("{", 400),
            ("[1]", 400),
            ("\"x\"", 400),
            ("null", 400),
        ] {
            let err = JsonFields::parse(raw.as_bytes()).err().expect(raw);
            assert_eq!(err.status().as_u16(), status, "{raw}");
        }
        let deep = "[".repeat(10_000);
        assert_eq!(
            JsonFields::parse(deep.as_bytes())
                .err()
                .expect("deep")
                .status()
                .as_u16(),
            400
        );
    }

    #[test]
    fn typed_fields_and_unknowns() {
        let mut f = JsonFields::parse(br#"{"a":"x","b":[1],"c":1,"d":null,"z":0}"#).expect("obj");
        assert_eq!(f.string("a").expect("a"), Some("x".into()));
        let e = f.string_list("b").expect_err("b");
        assert!(matches!(e, ApiError::Validation(ref v) if v.field == "b[0]"));
        assert!(f.bool("c").is_err());
        assert_eq!(f.nullable_string("d").expect("d"), Some(None));
        assert_eq!(f.nullable_string("missing").expect("missing"), None);
        let e = f.finish().expect_err("z left");
        assert_eq!(e.status().as_u16(), 400);
        assert_eq!(e.field(), Some("z"));
    }

    #[tokio::test]
    async fn oversized_bodies_are_413() {
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES));
        let err = read_capped(Body::from(big)).await.expect_err("too big");
        assert_eq!(err.status().as_u16(), 413);
        let ok = read_capped(Body::from("{}")).await;
        assert!(ok.is_ok());
    }
}
