//! Reading JSON request bodies into precise errors: 413 past the size cap, 400 for bytes
//! that are not a JSON object, 422 naming the field for a value of the wrong type or an
//! unknown field.

use super::ApiError;
use crate::domain::ValidationError;
use axum::body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{Map, Value};

/// Request bodies are capped at 512 KiB (SPEC.md).
pub const MAX_BODY_BYTES: usize = 512 * 1024;

/// The fields of a JSON object body, taken one by one; whatever is left is unknown.
pub struct JsonFields(Map<String, Value>);

impl JsonFields {
    pub async fn read(body: Body) -> Result<Self, ApiError> {
        let bytes = Limited::new(body, MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|err| {
                if err.downcast_ref::<LengthLimitError>().is_some() {
                    ApiError::PayloadTooLarge {
                        limit: MAX_BODY_BYTES,
                    }
                } else {
                    ApiError::BadRequest("the request body could not be read".into())
                }
            })?
            .to_bytes();
        Self::parse(&bytes)
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::BadRequest(
                "the request body must be a JSON object".into(),
            ));
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(ApiError::BadRequest(
                "the request body must be a JSON object".into(),
            )),
            Err(e) => Err(ApiError::BadRequest(format!("malformed JSON: {e}"))),
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

    pub fn bool(&mut self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.0.remove(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(wrong_type(name, "true or false")),
        }
    }

    /// Fail on the first field nobody took (in key order, so the answer is stable).
    pub fn finish(self) -> Result<(), ApiError> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(unknown) => Err(ValidationError::new(unknown.clone(), "unknown field").into()),
        }
    }
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
        assert!(matches!(e, ApiError::Validation(ref v) if v.field == "z"));
    }

    #[tokio::test]
    async fn oversized_bodies_are_413() {
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES));
        let err = JsonFields::read(Body::from(big))
            .await
            .err()
            .expect("too big");
        assert_eq!(err.status().as_u16(), 413);
        let ok = JsonFields::read(Body::from("{}")).await;
        assert!(ok.is_ok());
    }
}
