//! `POST /org/{org_slug}/webhooks/events`: publish an event to its subscribers.

use super::auth::{self, authorize};
use super::body::{JsonFields, required};
use super::{ApiError, PathParams};
use crate::domain::ValidationError;
use crate::domain::validation::{EVENT_TYPE_RULE, is_valid_event_type};
use crate::pipeline::{Audience, PublishError, PublishRequest, Published, Publisher};
use crate::ports::KeyStore;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;

/// Published `data` is at most 256 KiB (serialised).
pub const MAX_DATA_BYTES: usize = 256 * 1024;
const MAX_EVENT_ID_LEN: usize = 128;

#[derive(Clone)]
pub struct PublishState {
    pub keys: Arc<dyn KeyStore>,
    pub publisher: Arc<Publisher>,
}

pub fn routes(state: PublishState) -> Router {
    Router::new()
        .route("/org/{org_slug}/webhooks/events", post(publish))
        .with_state(state)
}

async fn publish(
    State(state): State<PublishState>,
    params: PathParams,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let org = params.org();
    authorize(state.keys.as_ref(), &headers, org, auth::PUBLISH).await?;
    params.no_query()?;
    let request = parse_publish(JsonFields::read(body).await?)?;
    let published = state
        .publisher
        .publish(org, request, Audience::Subscribers)
        .await
        .map_err(publish_error)?;
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

pub fn publish_error(err: PublishError) -> ApiError {
    match err {
        PublishError::UnknownEndpoint => ApiError::NotFound,
        PublishError::IdReused => ApiError::EventIdReused,
        PublishError::InProgress => ApiError::PublishInProgress,
        PublishError::Store(e) => e.into(),
        PublishError::Queue(e) => {
            tracing::error!(error = %e, "publish not enqueued");
            ApiError::Internal
        }
    }
}

fn parse_publish(mut fields: JsonFields) -> Result<PublishRequest, ApiError> {
    let event_type = required(fields.string("type")?, "type")?;
    let data = required(fields.value("data"), "data")?;
    let id = fields.string("id")?;
    fields.finish()?;
    if !is_valid_event_type(&event_type) {
        return Err(ValidationError::new("type", EVENT_TYPE_RULE).into());
    }
    if !data.is_object() {
        return Err(ValidationError::new("data", "must be a JSON object").into());
    }
    if serde_json::to_vec(&data).map_or(usize::MAX, |b| b.len()) > MAX_DATA_BYTES {
        return Err(ValidationError::new("data", "must be at most 256 KiB").into());
    }
    if let Some(id) = &id {
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
    Ok(PublishRequest {
        id,
        event_type,
        data,
    })
}
