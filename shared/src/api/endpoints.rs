//! `/org/{org_slug}/webhooks/endpoints...`: create, list, update, delete, rotate-secret.

use super::auth::{self, authorize};
use super::body::{JsonFields, required};
use super::publish::{accepted, publish_error};
use super::{ApiError, PathParams};
use crate::domain::Job;
use crate::domain::job::JOB_VERSION;
use crate::domain::time::rfc3339_millis;
use crate::domain::validation::{self, MAX_ENDPOINTS_PER_ORG};
use crate::domain::{self, Endpoint, EndpointChanges, NewEndpoint, PausedBy, SigningSecret};
use crate::pipeline::{Audience, PublishRequest, Publisher};
use crate::ports::{EndpointStore, JobQueue, KeyStore, QueueError};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// What the endpoint routes need, and nothing more.
#[derive(Clone)]
pub struct EndpointsState {
    pub endpoints: Arc<dyn EndpointStore>,
    pub keys: Arc<dyn KeyStore>,
    /// For the resume and purge jobs of PATCH and DELETE.
    pub queue: Arc<dyn JobQueue>,
    /// For `POST .../test`.
    pub publisher: Arc<Publisher>,
}

pub fn routes(state: EndpointsState) -> Router {
    Router::new()
        .route("/org/{org_slug}/webhooks/endpoints", post(create).get(list))
        .route(
            "/org/{org_slug}/webhooks/endpoints/{endpoint_id}",
            get(show).patch(update).delete(remove),
        )
        .route(
            "/org/{org_slug}/webhooks/endpoints/{endpoint_id}/rotate-secret",
            post(rotate_secret),
        )
        .route(
            "/org/{org_slug}/webhooks/endpoints/{endpoint_id}/test",
            post(send_test),
        )
        .with_state(state)
}

/// An endpoint as the API shows it: never with its secret.
#[derive(Serialize)]
pub struct EndpointView<'a> {
    id: Uuid,
    url: &'a str,
    description: &'a str,
    event_types: &'a [String],
    is_active: bool,
    paused_reason: Option<&'static str>,
    consecutive_failures: u32,
    #[serde(with = "rfc3339_millis")]
    created_at: DateTime<Utc>,
    #[serde(with = "rfc3339_millis")]
    updated_at: DateTime<Utc>,
}

impl<'a> From<&'a Endpoint> for EndpointView<'a> {
    fn from(e: &'a Endpoint) -> Self {
        Self {
            id: e.id,
            url: &e.url,
            description: &e.description,
            event_types: &e.event_types,
            is_active: e.is_active,
            paused_reason: e.paused_by.map(PausedBy::as_str),
            consecutive_failures: e.consecutive_failures,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

#[derive(Serialize)]
struct EndpointList<'a> {
    endpoints: Vec<EndpointView<'a>>,
}

/// The create answer: the one place besides rotation where the secret is shown.
#[derive(Serialize)]
struct CreatedEndpoint<'a> {
    #[serde(flatten)]
    endpoint: EndpointView<'a>,
    secret: &'a str,
}

async fn create(
    State(state): State<EndpointsState>,
    params: PathParams,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let org = params.org();
    authorize(state.keys.as_ref(), &headers, org, auth::WRITE).await?;
    params.no_query()?;
    let new = parse_new_endpoint(JsonFields::read(body).await?)?;
    let number = state.endpoints.allocate_endpoint_number().await?;
    let endpoint = Endpoint::create(org, new, number, domain::now());
    state
        .endpoints
        .insert_endpoint(&endpoint, MAX_ENDPOINTS_PER_ORG)
        .await?;
    tracing::info!(org, endpoint_id = %endpoint.id, "endpoint created");
    let created = CreatedEndpoint {
        endpoint: EndpointView::from(&endpoint),
        secret: endpoint.secret.expose(),
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn list(
    State(state): State<EndpointsState>,
    params: PathParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = params.org();
    authorize(state.keys.as_ref(), &headers, org, auth::READ).await?;
    params.no_query()?;
    let endpoints = state.endpoints.list_endpoints(org).await?;
    Ok(Json(EndpointList {
        endpoints: endpoints.iter().map(EndpointView::from).collect(),
    })
    .into_response())
}

async fn show(
    State(state): State<EndpointsState>,
    params: PathParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = params.org();
    authorize(state.keys.as_ref(), &headers, org, auth::READ).await?;
    let id = params.id("endpoint_id")?;
    params.no_query()?;
    let endpoint = state
        .endpoints
        .get_endpoint(org, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(EndpointView::from(&endpoint)).into_response())
}

async fn update(
    State(state): State<EndpointsState>,
    params: PathParams,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let org = params.org();
    authorize(state.keys.as_ref(), &headers, org, auth::WRITE).await?;
    let id = params.id("endpoint_id")?;
    params.no_query()?;
    let changes = parse_changes(JsonFields::read(body).await?)?;
    let endpoint = state
        .endpoints
        .update_endpoint(org, id, &changes, domain::now())
        .await?
        .ok_or(ApiError::NotFound)?;
    tracing::info!(org, endpoint_id = %id, is_active = endpoint.is_active, "endpoint updated");
    if changes.resets_failures() {
        // Re-queue its held deliveries, a chunk per job however many there are.
        let job = Job::ResumeEndpoint {
            v: JOB_VERSION,
            org: org.to_owned(),
            endpoint_id: id,
        };
        // Once more a little later: a sender parking a delivery at this very moment, or
        // an index not yet showing it, is caught by the second pass.
        state
            .queue
            .enqueue(vec![(job.clone(), Duration::ZERO), (job, RESUME_RECHECK)])
            .await
            .map_err(queue_error)?;
    }
    Ok(Json(EndpointView::from(&endpoint)).into_response())
}

async fn remove(
    State(state): State<EndpointsState>,
    params: PathParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = params.org();
    authorize(state.keys.as_ref(), &headers, org, auth::WRITE).await?;
    let id = params.id("endpoint_id")?;
    params.no_query()?;
    // Its number keys its history, which the purge deletes after the endpoint is gone.
    let endpoint = state
        .endpoints
        .get_endpoint(org, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if !state.endpoints.delete_endpoint(org, id).await? {
        return Err(ApiError::NotFound);
    }
    tracing::info!(org, endpoint_id = %id, "endpoint deleted");
    // Its history goes in bounded chunks, one job each, so no invocation can time out.
    // Should this enqueue fail, the API already hides the history and TTL removes it.
    let job = Job::PurgeEndpoint {
        v: JOB_VERSION,
        org: org.to_owned(),
        endpoint_id: id,
        endpoint_number: endpoint.number,
    };
    if let Err(err) = state.queue.enqueue(vec![(job, Duration::ZERO)]).await {
        tracing::error!(org, endpoint_id = %id, error = %err, "purge not enqueued; history left to expire");
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn rotate_secret(
    State(state): State<EndpointsState>,
    params: PathParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = params.org();
    authorize(state.keys.as_ref(), &headers, org, auth::WRITE).await?;
    let id = params.id("endpoint_id")?;
    params.no_query()?;
    let secret = SigningSecret::generate();
    if !state
        .endpoints
        .replace_secret(org, id, &secret, domain::now())
        .await?
    {
        return Err(ApiError::NotFound);
    }
    tracing::info!(org, endpoint_id = %id, "endpoint secret rotated");
    Ok(Json(serde_json::json!({ "id": id, "secret": secret.expose() })).into_response())
}

async fn send_test(
    State(state): State<EndpointsState>,
    params: PathParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = params.org();
    authorize(state.keys.as_ref(), &headers, org, auth::WRITE).await?;
    let id = params.id("endpoint_id")?;
    params.no_query()?;
    let request = PublishRequest {
        id: None,
        event_type: TEST_EVENT_TYPE.to_owned(),
        data: serde_json::json!({
            "endpoint_id": id,
            "message": "This is a test event from AgentVista Webhooks.",
        }),
    };
    let published = state
        .publisher
        .publish(org, request, Audience::Endpoint(id))
        .await
        .map_err(publish_error)?;
    // No delivery: the endpoint was deleted after it was looked up.
    let delivery_id = published.delivery_ids.first().ok_or(ApiError::NotFound)?;
    Ok(accepted(
        &published,
        Some(("delivery_id", serde_json::json!(delivery_id))),
    ))
}

/// When the second resume pass runs: after any claim taken before the resume has ended.
const RESUME_RECHECK: Duration = Duration::from_secs(90);

/// The event type of `POST .../test`.
pub const TEST_EVENT_TYPE: &str = "webhook.test";

fn queue_error(err: QueueError) -> ApiError {
    tracing::error!(error = %err, "enqueue failed");
    ApiError::Internal
}

fn parse_new_endpoint(mut fields: JsonFields) -> Result<NewEndpoint, ApiError> {
    let url = required(fields.string("url")?, "url")?;
    let description = fields
        .nullable_string("description")?
        .flatten()
        .unwrap_or_default();
    let event_types = required(fields.string_list("event_types")?, "event_types")?;
    fields.finish()?;
    Ok(NewEndpoint {
        url: validation::endpoint_url(&url)?,
        description: validation::description(&description)?,
        event_types: validation::event_types(event_types)?,
    })
}

fn parse_changes(mut fields: JsonFields) -> Result<EndpointChanges, ApiError> {
    let url = fields.string("url")?;
    // `"description": null` clears the label.
    let description = fields
        .nullable_string("description")?
        .map(Option::unwrap_or_default);
    let event_types = fields.string_list("event_types")?;
    let is_active = fields.bool("is_active")?;
    fields.finish()?;
    Ok(EndpointChanges {
        url: url.as_deref().map(validation::endpoint_url).transpose()?,
        description: description
            .as_deref()
            .map(validation::description)
            .transpose()?,
        event_types: event_types.map(validation::event_types).transpose()?,
        is_active,
    })
}
