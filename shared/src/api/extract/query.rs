//! Query strings: a route that takes none says so with [`NoQuery`]; one that takes some
//! names them in a type read by [`ValidQuery`]. Either way an unknown or repeated
//! parameter is a 400 naming it, as for an unknown body field, so a typo never passes
//! silently. They come after the caller and the path ids in a handler's arguments.

use crate::api::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::collections::HashMap;

/// A query string's parameters, each one of a route's names and given at most once.
pub struct QueryParams(HashMap<String, String>);

impl QueryParams {
    /// The parameters of `raw`, each of which must be one of `allowed`.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut values = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            if !allowed.contains(&name.as_ref()) {
                return Err(ApiError::unknown_field(&name));
            }
            if values
                .insert(name.to_string(), value.into_owned())
                .is_some()
            {
                return Err(ApiError::bad_parameter(
                    &name,
                    format!("query parameter {name:?} is given more than once"),
                ));
            }
        }
        Ok(Self(values))
    }

    /// A parameter's text, if given.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A whole number in `1..=max`, or `default` when absent; 400 naming it otherwise.
    pub fn number(&self, name: &str, max: u32, default: u32) -> Result<u32, ApiError> {
        let Some(raw) = self.0.get(name) else {
            return Ok(default);
        };
        raw.parse::<u32>()
            .ok()
            .filter(|v| (1..=max).contains(v))
            .ok_or_else(|| {
                ApiError::bad_parameter(
                    name,
                    format!("{name} must be a whole number from 1 to {max}"),
                )
            })
    }

    /// An RFC 3339 time, if given; 400 naming it otherwise.
    pub fn time(&self, name: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
        self.text(name)
            .map(|raw| {
                crate::domain::time::parse(raw).ok_or_else(|| {
                    ApiError::bad_parameter(name, format!("{name} must be an RFC 3339 time"))
                })
            })
            .transpose()
    }
}

/// What a route's query string means, read from its checked parameters.
pub trait FromQuery: Sized {
    /// Every parameter the route takes.
    const PARAMETERS: &'static [&'static str];
    fn from_query(params: &QueryParams) -> Result<Self, ApiError>;
}

/// A route's query, typed.
pub struct ValidQuery<T>(pub T);

impl<S: Send + Sync, T: FromQuery> FromRequestParts<S> for ValidQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let params = QueryParams::parse(parts.uri.query(), T::PARAMETERS)?;
        T::from_query(&params).map(Self)
    }
}

/// For routes that take no query parameters: any given is refused.
pub struct NoQuery;

impl<S: Send + Sync> FromRequestParts<S> for NoQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        QueryParams::parse(parts.uri.query(), &[]).map(|_| NoQuery)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str, allowed: &[&str]) -> Result<QueryParams, ApiError> {
        QueryParams::parse(Some(query), allowed)
    }

    #[test]
    fn paging_numbers() {
        let q = params("page=3&per_page=100", &["page", "per_page"]).expect("known");
        assert_eq!(q.number("page", u32::MAX, 1).expect("page"), 3);
        assert_eq!(q.number("per_page", 100, 20).expect("per_page"), 100);
        let empty = params("", &["page"]).expect("none given");
        assert_eq!(empty.number("page", u32::MAX, 1).expect("default"), 1);
        for bad in [
            "page=0",
            "page=-1",
            "page=a",
            "page=",
            "page",
            "page=1.5",
            "page=%31%30x",
            "page=99999999999",
        ] {
            let q = params(bad, &["page"]).expect("known name");
            let e = q.number("page", u32::MAX, 1).expect_err(bad);
            assert_eq!(e.status().as_u16(), 400, "{bad}");
            assert_eq!(e.field(), Some("page"), "{bad}");
        }
        let q = params("per_page=101", &["per_page"]).expect("known");
        assert_eq!(
            q.number("per_page", 100, 20).expect_err("101").field(),
            Some("per_page")
        );
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused_by_name() {
        for (query, field) in [
            ("status=failed", "status"),
            ("page=1&x=y", "x"),
            ("pa%67e=1&p%20q=1", "p q"),
            ("page=1&page=2", "page"),
        ] {
            let e = params(query, &["page"]).err().expect(query);
            assert_eq!(e.status().as_u16(), 400, "{query}");
            assert_eq!(e.field(), Some(field), "{query}");
        }
        assert!(params("anything", &[]).is_err());
        assert!(params("", &[]).is_ok());
        assert!(params("page=2", &["page"]).is_ok());
    }
}
