//! `POST /org/{org_slug}/webhooks/events`: publish an event to its subscribers.

use super::error::ApiError;
use super::extract::auth::{Caller, Publish};
use super::extract::body::{FromJson, JsonFields, ValidJson, required};
use super::extract::query::NoQuery;
use super::request_metrics::labelled;
use super::state::PublishState;
use crate::domain::ValidationError;
use crate::domain::validation::{EVENT_TYPE_RULE, is_valid_event_type};
use crate::pipeline::{Audience, PublishRequest, Published};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

/// Published `data` is at most 256 KiB (serialised).
pub const MAX_DATA_BYTES: usize = 256 * 1024;
const MAX_EVENT_ID_LEN: usize = 128;

pub fn routes(state: PublishState) -> Router {
    labelled(
        Router::new()
            .route("/org/{org_slug}/webhooks/events", post(publish))
            .with_state(state),
        "publish",
    )
}

async fn publish(
    State(state): State<PublishState>,
    caller: Caller<Publish>,
    _: NoQuery,
    ValidJson(request): ValidJson<PublishRequest>,
) -> Result<Response, ApiError> {
    let published = state
        .publisher
        .publish(caller.org(), request, Audience::Subscribers)
        .await?;
    Ok(accepted(&published, None))
}

/// The 202 answer of a publish (and of an endpoint test, which adds the delivery id).
pub fn accepted(published: &Published, extra: Option<(&str, Value)>) -> Response {
    let mut body = json!({ "event_id": published.event_id, "deliveries": published.deliveries });
    if let Some((key, value)) = extra {
        body[key] = value;
    }
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

impl FromJson for PublishRequest {
    type Given = Self;

    fn take(fields: &mut JsonFields) -> Result<Self, ApiError> {
        Ok(PublishRequest {
            event_type: required(fields.string("type")?, "type")?,
            data: required(fields.value("data"), "data")?,
            id: fields.string("id")?,
        })
    }

    fn check(request: Self) -> Result<Self, ApiError> {
        let PublishRequest {
            id,
            event_type,
            data,
        } = &request;
        if !is_valid_event_type(event_type) {
            return Err(ValidationError::new("type", EVENT_TYPE_RULE).into());
        }
        if !data.is_object() {
            return Err(ValidationError::new("data", "must be a JSON object").into());
        }
        if serde_json::to_vec(data).map_or(usize::MAX, |b| b.len()) > MAX_DATA_BYTES {
            return Err(ValidationError::new("data", "must be at most 256 KiB").into());
        }
        if let Some(id) = id {
            let ok = !id.is_empty()
                && id.len() <= MAX_EVENT_ID_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
            if !ok {
                return Err(ValidationError::new(
                    "id",
                    "must be 1-128 characters of A-Z, a-z, 0-9, '_', '-', '.' and ':'",
                )
                .into());
            }
        }
        Ok(request)
    }
}
