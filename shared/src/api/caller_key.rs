//! `GET /key`: the API key the request carries (its id, organisation and role), for a
//! tool given only a key, such as `webhooks-local listen`, to learn which organisation
//! it acts for. Any valid key may ask, whatever its role.

use super::error::ApiError;
use super::extract::auth::{AnyRole, Caller};
use super::extract::query::NoQuery;
use super::request_metrics::labelled;
use crate::domain::Role;
use crate::domain::time::rfc3339_millis;
use crate::ports::KeyStore;
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
    labelled(
        Router::new().route(PATH, get(describe)).with_state(keys),
        "key",
    )
}

#[derive(Serialize)]
struct KeyView<'a> {
    id: Uuid,
    org: &'a str,
    role: Role,
    #[serde(with = "rfc3339_millis")]
    created_at: DateTime<Utc>,
}

async fn describe(caller: Caller<AnyRole>, _: NoQuery) -> Result<Response, ApiError> {
    let key = &caller.key;
    Ok(Json(KeyView {
        id: key.id,
        org: &key.org,
        role: key.role,
        created_at: key.created_at,
    })
    .into_response())
}
