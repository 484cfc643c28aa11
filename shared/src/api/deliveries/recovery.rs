//! `POST /org/{org_slug}/webhooks/endpoints/{endpoint_id}/recover` re-sends every
//! `failed` delivery of an endpoint created in a window (`pipeline::recovery` does the
//! work); `GET /org/{org_slug}/webhooks/recoveries/{recovery_id}` shows how far it got.
//! A dry run only counts.

use crate::api::error::ApiError;
use crate::api::extract::auth::{Caller, Read, Write};
use crate::api::extract::body::{FromJson, JsonFields, ValidJson, required};
use crate::api::extract::path::{EndpointId, RecoveryId};
use crate::api::extract::query::NoQuery;
use crate::api::state::DeliveriesState;
use crate::domain::ValidationError;
use crate::domain::time::{optional_rfc3339_millis, rfc3339_millis};
use crate::pipeline::recovery::Scope;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

/// What the request asks for.
pub(super) struct RecoverRequest {
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    dry_run: bool,
}

fn time_field(fields: &mut JsonFields, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    fields
        .string(name)?
        .map(|raw| {
            crate::domain::time::parse(&raw)
                .ok_or_else(|| ValidationError::new(name, "must be an RFC 3339 time").into())
        })
        .transpose()
}

impl FromJson for RecoverRequest {
    type Given = Self;

    fn take(fields: &mut JsonFields) -> Result<Self, ApiError> {
        let since = required(time_field(fields, "since")?, "since")?;
        // An `until` not later than `since` is an empty window (nothing to count or
        // send), as for the search's `since` and `until`.
        let until = time_field(fields, "until")?;
        let dry_run = fields.bool("dry_run")?.unwrap_or(false);
        Ok(Self {
            since,
            until,
            dry_run,
        })
    }

    fn check(given: Self) -> Result<Self, ApiError> {
        Ok(given)
    }
}

pub(super) async fn recover(
    State(state): State<DeliveriesState>,
    caller: Caller<Write>,
    EndpointId(id): EndpointId,
    _: NoQuery,
    ValidJson(request): ValidJson<RecoverRequest>,
) -> Result<Response, ApiError> {
    let org = caller.org();
    let scope = Scope {
        endpoint_id: id,
        since: request.since,
        until: request.until,
    };
    if request.dry_run {
        let counted = state.recoveries.count(org, scope).await?;
        return Ok(
            Json(json!({ "count": counted.count, "capped": counted.capped })).into_response(),
        );
    }
    let recovery = state.recoveries.start(org, scope).await?;
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
    #[serde(serialize_with = "optional_rfc3339_millis")]
    finished_at: Option<DateTime<Utc>>,
}

pub(super) async fn show(
    State(state): State<DeliveriesState>,
    caller: Caller<Read>,
    RecoveryId(id): RecoveryId,
    _: NoQuery,
) -> Result<Response, ApiError> {
    let r = state.recoveries.get(caller.org(), id).await?;
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
