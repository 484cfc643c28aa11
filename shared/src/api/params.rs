//! Path parameters, kept as raw strings: the handler authenticates first and only then
//! parses ids, so an unauthenticated caller learns nothing from a malformed id.

use super::ApiError;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use std::collections::HashMap;
use uuid::Uuid;

pub struct PathParams(HashMap<String, String>);

impl PathParams {
    pub fn org(&self) -> &str {
        self.0.get("org_slug").map_or("", String::as_str)
    }

    /// A UUID parameter; anything that is not one names no resource, hence 404.
    pub fn id(&self, name: &str) -> Result<Uuid, ApiError> {
        self.0
            .get(name)
            .and_then(|raw| Uuid::parse_str(raw).ok())
            .ok_or(ApiError::NotFound)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PathParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|Path(map)| Self(map))
            .map_err(|_| ApiError::NotFound)
    }
}
