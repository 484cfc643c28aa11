//! The API's one error type and its JSON shape:
//! `{"error": {"code": "...", "message": "...", "field": "..."?}}`.

use crate::domain::ValidationError;
use crate::key_admin::KeyError;
use crate::pipeline::{PublishError, RequestError};
use crate::ports::{QueueError, StoreError};
use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ApiError {
    /// The body is not a JSON object, or the query string or body names something the
    /// route does not take (`field` names it then).
    #[error("{message}")]
    BadRequest {
        message: String,
        field: Option<String>,
    },
    #[error("a valid API key is required: send `Authorization: Bearer <key>`")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(Forbidden),
    /// Unknown route, organisation or resource, and another organisation's resources.
    #[error("not found")]
    NotFound,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    Validation(#[from] ValidationError),
    #[error("the organisation already has the maximum of {limit} endpoints")]
    EndpointLimitReached { limit: usize },
    /// A publish reused an event id with a different `type` or `data`.
    #[error("an event with this id was already published with a different type or data")]
    EventIdReused,
    /// Another publish with the same event id is still fanning out; its hold ends in
    /// `retry_after_secs` (`Retry-After`).
    #[error(
        "another publish with this event id is still in progress; send the same request again after {retry_after_secs} s"
    )]
    PublishInProgress { retry_after_secs: u64 },
    /// The endpoint already has a recovery running (its id is in the message, for the
    /// caller to follow).
    #[error("recovery {0} is still running on this endpoint; wait for it to finish")]
    RecoveryRunning(uuid::Uuid),
    /// The local server's queue has no room for a publish: nothing was stored; the
    /// same request may be sent again after `retry_after_secs` (`Retry-After`).
    #[error(
        "the delivery queue is full; nothing was stored: send the same request again after {retry_after_secs} s"
    )]
    Overloaded { retry_after_secs: u64 },
    /// Details go to the log where this is made, never to the client.
    #[error("internal error")]
    Internal,
}

/// Why a valid key of the organisation is refused (403 `forbidden` either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Forbidden {
    #[error("this API key's role may not do that")]
    Role,
    /// A portal session asked to create a portal session (or key).
    #[error("a portal session may not create portal sessions or keys")]
    Session,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::EventIdReused
            | ApiError::PublishInProgress { .. }
            | ApiError::RecoveryRunning(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Validation(_) | ApiError::EndpointLimitReached { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Validation(_) => "validation_failed",
            ApiError::EndpointLimitReached { .. } => "endpoint_limit_reached",
            ApiError::EventIdReused => "event_id_reused",
            ApiError::PublishInProgress { .. } => "publish_in_progress",
            ApiError::RecoveryRunning(_) => "recovery_running",
            ApiError::Overloaded { .. } => "overloaded",
            ApiError::Internal => "internal_error",
        }
    }
}

impl ApiError {
    /// A 400 without a field: the body as a whole is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            field: None,
        }
    }

    /// A 400 for a query parameter (or field) given in a form the route does not take.
    pub fn bad_parameter(name: &str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            field: Some(name.to_owned()),
        }
    }

    /// A 400 for a body field or query parameter the route does not take (one message for
    /// both: the `field` names it either way).
    pub fn unknown_field(name: &str) -> Self {
        ApiError::BadRequest {
            message: format!("{name:?} is not a field or parameter this route takes"),
            field: Some(name.to_owned()),
        }
    }

    /// The field or parameter an error names, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            ApiError::BadRequest { field, .. } => field.as_deref(),
            ApiError::Validation(v) => Some(&v.field),
            ApiError::EventIdReused => Some("id"),
            _ => None,
        }
    }
}

/// The JSON body of every error: `{"error": {"code", "message", "field"?}}`.
pub fn error_body(code: &str, message: &str, field: Option<&str>) -> serde_json::Value {
    let mut error = json!({ "code": code, "message": message });
    if let Some(field) = field {
        error["field"] = json!(field);
    }
    json!({ "error": error })
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::EndpointLimitReached { limit } => ApiError::EndpointLimitReached { limit },
            other => {
                tracing::error!(error = %other, "storage failure");
                ApiError::Internal
            }
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(err: QueueError) -> Self {
        tracing::error!(error = %err, "a job could not be enqueued");
        ApiError::Internal
    }
}

impl From<RequestError> for ApiError {
    fn from(err: RequestError) -> Self {
        match err {
            RequestError::NotFound => ApiError::NotFound,
            RequestError::RecoveryRunning(id) => ApiError::RecoveryRunning(id),
            RequestError::Store(e) => e.into(),
            RequestError::Queue(e) => e.into(),
        }
    }
}

impl From<PublishError> for ApiError {
    fn from(err: PublishError) -> Self {
        match err {
            PublishError::UnknownEndpoint => ApiError::NotFound,
            PublishError::IdReused => ApiError::EventIdReused,
            PublishError::InProgress { retry_after } => ApiError::PublishInProgress {
                retry_after_secs: whole_secs(retry_after),
            },
            PublishError::Store(e) => e.into(),
            PublishError::Queue(e) => e.into(),
            PublishError::Overloaded(full) => ApiError::Overloaded {
                retry_after_secs: whole_secs(full.retry_after),
            },
        }
    }
}

/// A wait as `Retry-After` gives it: whole seconds, rounded up, at least one (never an
/// invitation to come back at once).
fn whole_secs(wait: std::time::Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Minting through the API (portal sessions): the organisation is the caller's own and
/// the token random, so only a session as the caller or storage can fail.
impl From<KeyError> for ApiError {
    fn from(err: KeyError) -> Self {
        match err {
            KeyError::SessionMayNotMint => ApiError::Forbidden(Forbidden::Session),
            other => {
                tracing::error!(error = %other, "a key could not be stored");
                ApiError::Internal
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = match &self {
            ApiError::Validation(v) => v.message.clone(),
            other => other.to_string(),
        };
        let body = error_body(self.code(), &message, self.field());
        let mut response = (self.status(), Json(body)).into_response();
        match self {
            ApiError::Unauthorized => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
            }
            ApiError::Overloaded { retry_after_secs }
            | ApiError::PublishInProgress { retry_after_secs } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, retry_after_secs.into());
            }
            _ => {}
        }
        response
    }
}
