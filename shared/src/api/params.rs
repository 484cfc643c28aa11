//! Path and query parameters, kept raw: the handler authenticates first and only then
//! parses ids and the query string, so an unauthenticated caller learns nothing from a
//! malformed id or parameter.

use super::ApiError;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use std::collections::HashMap;
use uuid::Uuid;

pub struct PathParams {
    path: HashMap<String, String>,
    query: Option<String>,
}

impl PathParams {
    pub fn org(&self) -> &str {
        self.path.get("org_slug").map_or("", String::as_str)
    }

    /// A UUID parameter; anything that is not one names no resource, hence 404.
    pub fn id(&self, name: &str) -> Result<Uuid, ApiError> {
        self.path
            .get(name)
            .and_then(|raw| Uuid::parse_str(raw).ok())
            .ok_or(ApiError::NotFound)
    }

    /// The query string's parameters, each of which must be one of `allowed` and given
    /// at most once (400 naming it otherwise, as for an unknown body field).
    pub fn query(&self, allowed: &[&str]) -> Result<Query, ApiError> {
        let mut values = HashMap::new();
        let pairs =
            url::form_urlencoded::parse(self.query.as_deref().unwrap_or_default().as_bytes());
        for (name, value) in pairs {
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
        Ok(Query(values))
    }

    /// For routes that take no query parameters: any given is refused.
    pub fn no_query(&self) -> Result<(), ApiError> {
        self.query(&[]).map(drop)
    }
}

/// The parameters of a query string, checked against the route's list.
pub struct Query(HashMap<String, String>);

impl Query {
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
}

impl<S: Send + Sync> FromRequestParts<S> for PathParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let path = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|Path(map)| map)
            .map_err(|_| ApiError::NotFound)?;
        Ok(Self {
            path,
            query: parts.uri.query().map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> PathParams {
        PathParams {
            path: HashMap::new(),
            query: Some(query.to_owned()),
        }
    }

    #[test]
    fn paging_numbers() {
        let q = params("page=3&per_page=100")
            .query(&["page", "per_page"])
            .expect("known");
        assert_eq!(q.number("page", u32::MAX, 1).expect("page"), 3);
        assert_eq!(q.number("per_page", 100, 20).expect("per_page"), 100);
        let empty = params("").query(&["page"]).expect("none given");
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
            let q = params(bad).query(&["page"]).expect("known name");
            let e = q.number("page", u32::MAX, 1).expect_err(bad);
            assert_eq!(e.status().as_u16(), 400, "{bad}");
            assert_eq!(e.field(), Some("page"), "{bad}");
        }
        let q = params("per_page=101").query(&["per_page"]).expect("known");
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
            let e = params(query).query(&["page"]).err().expect(query);
            assert_eq!(e.status().as_u16(), 400, "{query}");
            assert_eq!(e.field(), Some(field), "{query}");
        }
        assert!(params("anything").no_query().is_err());
        assert!(params("").no_query().is_ok());
        assert!(params("page=2").query(&["page"]).is_ok());
    }
}
