//! Delivery history: list an endpoint's deliveries, search the organisation's, show one
//! with its attempts, retry one; an endpoint's hourly statistics and recoveries.

use super::auth::{self, authorize};
use super::{ApiError, PathParams};
use super::{recovery, search, stats};
use crate::domain::time::rfc3339_millis;
use crate::domain::{Attempt, Delivery, DeliveryKey, DeliveryStatus};
use crate::pipeline::sender::delivery_job;
use crate::ports::{
    AttemptStats, DeliveryStore, EndpointStore, EventStore, JobQueue, KeyStore, RecoveryStore,
    RetryOf,
};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub const DEFAULT_PER_PAGE: u32 = 20;
pub const MAX_PER_PAGE: u32 = 100;

#[derive(Clone)]
pub struct DeliveriesState {
    pub keys: Arc<dyn KeyStore>,
    pub endpoints: Arc<dyn EndpointStore>,
    pub deliveries: Arc<dyn DeliveryStore>,
    pub events: Arc<dyn EventStore>,
    pub queue: Arc<dyn JobQueue>,
    pub stats: Arc<dyn AttemptStats>,
    pub recoveries: Arc<dyn RecoveryStore>,
}

pub fn routes(state: DeliveriesState) -> Router {
    Router::new()
        .route(
            "/org/{org_slug}/webhooks/endpoints/{endpoint_id}/deliveries",
            get(list),
        )
        .route("/org/{org_slug}/webhooks/deliveries", get(search::search))
        .route(
            "/org/{org_slug}/webhooks/deliveries/{delivery_id}",
            get(detail),
        )
        .route(
            "/org/{org_slug}/webhooks/deliveries/{delivery_id}/retry",
            post(retry),
        )
        .route(
            "/org/{org_slug}/webhooks/endpoints/{endpoint_id}/stats",
            get(stats::stats),
        )
        .route(
            "/org/{org_slug}/webhooks/endpoints/{endpoint_id}/recover",
            post(recovery::recover),
        )
        .route(
            "/org/{org_slug}/webhooks/recoveries/{recovery_id}",
            get(recovery::show),
        )
        .with_state(state)
}

#[derive(Serialize)]
pub(crate) struct DeliverySummary<'a> {
    id: Uuid,
    endpoint_id: Uuid,
    event_id: &'a str,
    event_type: &'a str,
    status: DeliveryStatus,
    attempt_count: u32,
    last_status_code: Option<u16>,
    #[serde(with = "rfc3339_millis")]
    created_at: DateTime<Utc>,
    #[serde(with = "rfc3339_millis")]
    updated_at: DateTime<Utc>,
    #[serde(serialize_with = "optional_time")]
    next_attempt_at: Option<DateTime<Utc>>,
}

pub(crate) fn optional_time<S: serde::Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&crate::domain::time::format(t)),
        None => s.serialize_none(),
    }
}

impl<'a> From<&'a Delivery> for DeliverySummary<'a> {
    fn from(d: &'a Delivery) -> Self {
        Self {
            id: d.id,
            endpoint_id: d.endpoint_id,
            event_id: &d.event_id,
            event_type: &d.event_type,
            status: d.status,
            attempt_count: d.attempt_count(),
            last_status_code: d.last_status_code(),
            created_at: d.created_at,
            updated_at: d.updated_at,
            // A paused or finished delivery has no next attempt, whatever is stored.
            next_attempt_at: d.next_attempt_at.filter(|_| d.status.is_due()),
        }
    }
}

#[derive(Serialize)]
struct DeliveryDetail<'a> {
    #[serde(flatten)]
    summary: DeliverySummary<'a>,
    /// The stored envelope verbatim: the exact bytes sent, field order included.
    payload: Option<Box<RawValue>>,
    attempts: &'a [Attempt],
}

#[derive(Serialize)]
struct DeliveryPage<'a> {
    deliveries: Vec<DeliverySummary<'a>>,
    total: u64,
    page: u32,
    per_page: u32,
}

async fn list(
    State(state): State<DeliveriesState>,
    params: PathParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = params.org();
    authorize(state.keys.as_ref(), &headers, org, auth::READ).await?;
    let endpoint_id = params.id("endpoint_id")?;
    let query = params.query(&["page", "per_page"])?;
    let page = query.number("page", u32::MAX, 1)?;
    let per_page = query.number("per_page", MAX_PER_PAGE, DEFAULT_PER_PAGE)?;
    let endpoint = state
        .endpoints
        .get_endpoint(org, endpoint_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let (items, total) = state
        .deliveries
        .delivery_page(&endpoint, page, per_page)
        .await?;
    Ok(Json(DeliveryPage {
        deliveries: items.iter().map(DeliverySummary::from).collect(),
        total,
        page,
        per_page,
    })
    .into_response())
}

/// The delivery, if it belongs to `org` and its endpoint still exists (a deleted
/// endpoint's history is gone at once for the API, while the purge catches up). An id
/// names its place (see `DeliveryKey`): one read, and the stored id must be that id.
async fn find(state: &DeliveriesState, org: &str, id: Uuid) -> Result<Delivery, ApiError> {
    let key = DeliveryKey::from_id(id).ok_or(ApiError::NotFound)?;
    let delivery = state
        .deliveries
        .get_delivery(key)
        .await?
        .filter(|d| d.org == org && d.id == id)
        .ok_or(ApiError::NotFound)?;
    state
        .endpoints
        .get_endpoint(org, delivery.endpoint_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(delivery)
}

async fn detail(
    State(state): State<DeliveriesState>,
    params: PathParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = params.org();
    authorize(state.keys.as_ref(), &headers, org, auth::READ).await?;
    let id = params.id("delivery_id")?;
    params.no_query()?;
    let delivery = find(&state, org, id).await?;
    let payload = match state.events.get_event(org, &delivery.event_id).await? {
        Some(event) => Some(RawValue::from_string(event.payload).map_err(|e| {
            tracing::error!(delivery_id = %id, error = %e, "stored payload is not JSON");
            ApiError::Internal
        })?),
        None => None,
    };
    Ok(Json(DeliveryDetail {
        summary: DeliverySummary::from(&delivery),
        payload,
        attempts: &delivery.attempts,
    })
    .into_response())
}

async fn retry(
    State(state): State<DeliveriesState>,
    params: PathParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = params.org();
    authorize(state.keys.as_ref(), &headers, org, auth::WRITE).await?;
    let id = params.id("delivery_id")?;
    params.no_query()?;
    let delivery = find(&state, org, id).await?;
    let request = Uuid::now_v7();
    let Some(delivery) = state
        .deliveries
        .request_retry(delivery.key, request, RetryOf::Any)
        .await?
    else {
        return Err(ApiError::NotFound);
    };
    // The job carries the envelope, as a first attempt's does, so the sender reads none.
    let payload = state
        .events
        .get_event(org, &delivery.event_id)
        .await?
        .map(|e| e.payload);
    let job = delivery_job(&delivery, payload.as_deref()).manual(request);
    state
        .queue
        .enqueue(vec![(job, Duration::ZERO)])
        .await
        .map_err(|err| {
            tracing::error!(delivery_id = %id, error = %err, "retry not enqueued");
            ApiError::Internal
        })?;
    tracing::info!(org, delivery_id = %id, "manual retry queued");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "queued": true, "delivery_id": id })),
    )
        .into_response())
}
