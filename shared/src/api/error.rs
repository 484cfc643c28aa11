//! The API's one error type and its JSON shape:
//! `{"error": {"code": "...", "message": "...", "field": "..."?}}`.

use crate::domain::ValidationError;
use crate::ports::StoreError;
use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ApiError {
    /// The body is not JSON, or not the JSON shape the route takes.
    #[error("{0}")]
    BadRequest(String),
    #[error("a valid API key is required: send `Authorization: Bearer <key>`")]
    Unauthorized,
    #[error("this API key's role may not do that")]
    Forbidden,
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
    /// Details go to the log where this is made, never to the client.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Validation(_) | ApiError::EndpointLimitReached { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Validation(_) => "validation_failed",
            ApiError::EndpointLimitReached { .. } => "endpoint_limit_reached",
            ApiError::Internal => "internal_error",
        }
    }
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code(), "message": self.to_string() });
        if let ApiError::Validation(v) = &self {
            error["message"] = json!(v.message);
            error["field"] = json!(v.field);
        }
        let mut response = (self.status(), Json(json!({ "error": error }))).into_response();
        if matches!(self, ApiError::Unauthorized) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
