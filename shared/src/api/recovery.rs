//! Recovery: `POST /org/{org_slug}/webhooks/endpoints/{endpoint_id}/recover` re-sends
//! every `failed` delivery of an endpoint created in a window, as manual attempts, through
//! a job that works a chunk at a time (no cap on the count, any window); `GET
//! /org/{org_slug}/webhooks/recoveries/{recovery_id}` shows how far it got. A dry run
//! only counts.

use super::auth::{self, authorize};
use super::body::{JsonFields, required};
use super::deliveries::{DeliveriesState, optional_time};
use super::search::parse_rfc3339;
use super::{ApiError, PathParams};
use crate::domain::recovery::{Recovery, RecoveryStatus};
use crate::domain::time::{rfc3339_millis, whole_millis};
use crate::domain::{Job, ValidationError, now};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

/// What the request asks for.
struct Request {
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    dry_run: bool,
}

fn time_field(fields: &mut JsonFields, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    fields
        .string(name)?
        .map(|raw| {
            parse_rfc3339(&raw)
                .ok_or_else(|| ValidationError::new(name, "must be an RFC 3339 time").into())
        })
        .transpose()
}

fn parse(mut fields: JsonFields) -> Result<Request, ApiError> {
    let since = required(time_field(&mut fields, "since")?, "since")?;
    // An `until` not later than `since` is an empty window (nothing to count or send),
    // as for the search's `since` and `until`.
    let until = time_field(&mut fields, "until")?;
    let dry_run = fields.bool("dry_run")?.unwrap_or(false);
    fields.finish()?;
    Ok(Request {
        since,
        until,
        dry_run,
    })
}

pub async fn recover(
    State(state): State<DeliveriesState>,
    params: PathParams,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let org = params.org();
    authorize(state.keys.as_ref(), &headers, org, auth::WRITE).await?;
    let id = params.id("endpoint_id")?;
    params.no_query()?;
    let request = parse(JsonFields::read(body).await?)?;
    let endpoint = state
        .endpoints
        .get_endpoint(org, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let created_at = now();
    // Nothing is created after this request, so `until` ends here at the latest (and
    // without one, everything created up to it: times are whole milliseconds, so one
    // created in this very millisecond is included too). Both ends are cut to whole
    // milliseconds, as stored times are.
    let latest = created_at + chrono::Duration::milliseconds(1);
    let until = request
        .until
        .map_or(latest, |u| whole_millis(u).min(latest));
    let since = whole_millis(request.since);
    if request.dry_run {
        let count = state
            .deliveries
            .count_failed(endpoint.number, since, until)
            .await?;
        return Ok(Json(json!({ "count": count })).into_response());
    }
    let recovery = Recovery {
        id: Uuid::now_v7(),
        org: org.to_owned(),
        endpoint_id: id,
        endpoint_number: endpoint.number,
        since,
        until,
        status: RecoveryStatus::Running,
        queued: 0,
        created_at,
        finished_at: None,
        position: None,
    };
    state.recoveries.insert_recovery(&recovery).await?;
    let job = Job::RecoverEndpoint {
        v: crate::domain::job::JOB_VERSION,
        org: org.to_owned(),
        recovery_id: recovery.id,
    };
    state
        .queue
        .enqueue(vec![(job, Duration::ZERO)])
        .await
        .map_err(|err| {
            tracing::error!(recovery_id = %recovery.id, error = %err, "recovery not enqueued");
            ApiError::Internal
        })?;
    tracing::info!(org, endpoint_id = %id, recovery_id = %recovery.id, since = %recovery.since, until = %recovery.until, "recovery started");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "recovery_id": recovery.id, "status": "running" })),
    )
        .into_response())
}

#[derive(Serialize)]
struct RecoveryView {
    recovery_id: Uuid,
    endpoint_id: Uuid,
    #[serde(with = "rfc3339_millis")]
    since: DateTime<Utc>,
    #[serde(with = "rfc3339_millis")]
    until: DateTime<Utc>,
    status: &'static str,
    queued: u64,
    #[serde(with = "rfc3339_millis")]
    created_at: DateTime<Utc>,
    #[serde(serialize_with = "optional_time")]
    finished_at: Option<DateTime<Utc>>,
}

pub async fn show(
    State(state): State<DeliveriesState>,
    params: PathParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = params.org();
    authorize(state.keys.as_ref(), &headers, org, auth::READ).await?;
    let id = params.id("recovery_id")?;
    params.no_query()?;
    let r = state
        .recoveries
        .get_recovery(org, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(RecoveryView {
        recovery_id: r.id,
        endpoint_id: r.endpoint_id,
        since: r.since,
        until: r.until,
        status: r.status.as_str(),
        queued: r.queued,
        created_at: r.created_at,
        finished_at: r.finished_at,
    })
    .into_response())
}
