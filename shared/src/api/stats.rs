//! `GET /org/{org_slug}/webhooks/endpoints/{endpoint_id}/stats`: an endpoint's attempts
//! per UTC hour over the last 24 hours or 7 days, every hour present (the console's
//! chart). One read of the organisation's hourly items (at most 168).

use super::auth::{self, authorize};
use super::deliveries::DeliveriesState;
use super::{ApiError, PathParams};
use crate::domain::now;
use crate::domain::stats::{StatsWindow, every_hour};
use crate::domain::time::rfc3339_millis;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
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

pub async fn stats(
    State(state): State<DeliveriesState>,
    params: PathParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = params.org();
    authorize(state.keys.as_ref(), &headers, org, auth::READ).await?;
    let id = params.id("endpoint_id")?;
    let query = params.query(&["window"])?;
    let window = match query.text("window") {
        None => StatsWindow::Day,
        Some(raw) => StatsWindow::parse(raw)
            .ok_or_else(|| ApiError::bad_parameter("window", "window must be 24h or 7d"))?,
    };
    let endpoint = state
        .endpoints
        .get_endpoint(org, id)
        .await?
        .ok_or(ApiError::NotFound)?;
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
