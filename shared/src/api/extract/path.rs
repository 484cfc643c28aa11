//! Typed path parameters. An id that is not a UUID names no resource: 404, as for an
//! unknown one. They come after [`super::auth::Caller`] in a handler's arguments, so an
//! unauthenticated caller learns nothing from a malformed id.

use crate::api::error::ApiError;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use std::collections::HashMap;
use uuid::Uuid;

/// The route's path parameters by name; a path axum cannot decode names nothing (404).
async fn parameters<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
) -> Result<HashMap<String, String>, ApiError> {
    Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map(|Path(map)| map)
        .map_err(|_| ApiError::NotFound)
}

/// The organisation the path names, if the route has one (`/key` has none).
pub(super) async fn org_slug<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
) -> Result<Option<String>, ApiError> {
    Ok(parameters(parts, state).await?.remove("org_slug"))
}

async fn uuid_parameter<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    name: &str,
) -> Result<Uuid, ApiError> {
    parameters(parts, state)
        .await?
        .get(name)
        .and_then(|raw| Uuid::parse_str(raw).ok())
        .ok_or(ApiError::NotFound)
}

/// A UUID path parameter as a type of its own, so a handler cannot mix one id up with
/// another.
macro_rules! path_id {
    ($(#[$doc:meta])* $name:ident = $parameter:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name(pub Uuid);

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &S,
            ) -> Result<Self, Self::Rejection> {
                uuid_parameter(parts, state, $parameter).await.map(Self)
            }
        }
    };
}

path_id!(
    /// `{endpoint_id}`.
    EndpointId = "endpoint_id"
);
path_id!(
    /// `{delivery_id}`.
    DeliveryId = "delivery_id"
);
path_id!(
    /// `{recovery_id}`.
    RecoveryId = "recovery_id"
);
