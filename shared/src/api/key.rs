//! `GET /key`: the API key the request carries (its id, organisation and role), for a
//! tool given only a key, such as `webhooks-local listen`, to learn which organisation
//! it acts for. Any valid key may ask, whatever its role.

use super::auth;
use super::{ApiError, PathParams};
use crate::domain::Role;
use crate::domain::time::rfc3339_millis;
use crate::ports::KeyStore;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

/// Where the route is served.
pub const PATH: &str = "/key";

pub fn routes(keys: Arc<dyn KeyStore>) -> Router {
    Router::new().route(PATH, get(describe)).with_state(keys)
}

#[derive(Serialize)]
struct KeyView<'a> {
    id: Uuid,
    org: &'a str,
    role: Role,
    #[serde(with = "rfc3339_millis")]
    created_at: DateTime<Utc>,
}

async fn describe(
    State(keys): State<Arc<dyn KeyStore>>,
    params: PathParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = auth::identify(keys.as_ref(), &headers).await?;
    params.no_query()?;
    Ok(Json(KeyView {
        id: key.id,
        org: &key.org,
        role: key.role,
        created_at: key.created_at,
    })
    .into_response())
}
