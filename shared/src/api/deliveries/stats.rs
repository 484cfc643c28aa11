//! `GET /org/{org_slug}/webhooks/endpoints/{endpoint_id}/stats`: an endpoint's attempts
//! per UTC hour over the last 24 hours or 7 days, every hour present (the console's
//! chart). One read of the organisation's hourly items (at most 168).

use crate::api::error::ApiError;
use crate::api::extract::auth::{Caller, Read};
use crate::api::extract::path::EndpointId;
use crate::api::extract::query::{FromQuery, QueryParams, ValidQuery};
use crate::api::state::DeliveriesState;
use crate::domain::now;
use crate::domain::stats::{StatsWindow, every_hour};
use crate::domain::time::rfc3339_millis;
use crate::pipeline::lookup;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

#[derive(Serialize)]
struct Stats {
    endpoint_id: Uuid,
    window: &'static str,
    buckets: Vec<Bucket>,
}

#[derive(Serialize)]
struct Bucket {
    #[serde(with = "rfc3339_millis")]
    start: DateTime<Utc>,
    succeeded: u64,
    failed: u64,
}

impl FromQuery for StatsWindow {
    const PARAMETERS: &'static [&'static str] = &["window"];

    fn from_query(params: &QueryParams) -> Result<Self, ApiError> {
        match params.text("window") {
            None => Ok(StatsWindow::Day),
            Some(raw) => StatsWindow::parse(raw)
                .ok_or_else(|| ApiError::bad_parameter("window", "window must be 24h or 7d")),
        }
    }
}

pub(super) async fn stats(
    State(state): State<DeliveriesState>,
    caller: Caller<Read>,
    EndpointId(id): EndpointId,
    ValidQuery(window): ValidQuery<StatsWindow>,
) -> Result<Response, ApiError> {
    let org = caller.org();
    let endpoint = lookup::endpoint(state.endpoints.as_ref(), org, id).await?;
    let (first, last) = window.hours_until(now());
    let stored = state
        .stats
        .attempt_counts(org, endpoint.number, first, last)
        .await?;
    let buckets = every_hour(first, last, &stored)
        .into_iter()
        .map(|c| Bucket {
            start: c.hour,
            succeeded: c.succeeded,
            failed: c.failed,
        })
        .collect();
    Ok(Json(Stats {
        endpoint_id: id,
        window: window.as_str(),
        buckets,
    })
    .into_response())
}
