//! Reading history: an endpoint's deliveries a page at a time, the organisation's
//! deliveries across its endpoints (`pipeline::history` merges them), and one delivery
//! with its payload and attempts.

use crate::api::error::ApiError;
use crate::api::extract::auth::{Caller, Read};
use crate::api::extract::path::{DeliveryId, EndpointId};
use crate::api::extract::query::{FromQuery, NoQuery, QueryParams, ValidQuery};
use crate::api::state::DeliveriesState;
use crate::api::views::DeliverySummary;
use crate::domain::{Attempt, DeliveryStatus, validation};
use crate::pipeline::history::{Cursor, Filters, Search};
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

const DEFAULT_PER_PAGE: u32 = 20;
const MAX_PER_PAGE: u32 = 100;

/// `?page=&per_page=`.
pub(super) struct Paging {
    page: u32,
    per_page: u32,
}

impl FromQuery for Paging {
    const PARAMETERS: &'static [&'static str] = &["page", "per_page"];

    fn from_query(params: &QueryParams) -> Result<Self, ApiError> {
        Ok(Self {
            page: params.number("page", u32::MAX, 1)?,
            per_page: params.number("per_page", MAX_PER_PAGE, DEFAULT_PER_PAGE)?,
        })
    }
}

#[derive(Serialize)]
struct DeliveryPage<'a> {
    deliveries: Vec<DeliverySummary<'a>>,
    total: u64,
    page: u32,
    per_page: u32,
}

pub(super) async fn endpoint_page(
    State(state): State<DeliveriesState>,
    caller: Caller<Read>,
    EndpointId(endpoint_id): EndpointId,
    ValidQuery(Paging { page, per_page }): ValidQuery<Paging>,
) -> Result<Response, ApiError> {
    let (items, total) = state
        .history
        .endpoint_page(caller.org(), endpoint_id, page, per_page)
        .await?;
    Ok(Json(DeliveryPage {
        deliveries: items.iter().map(DeliverySummary::from).collect(),
        total,
        page,
        per_page,
    })
    .into_response())
}

impl FromQuery for Search {
    const PARAMETERS: &'static [&'static str] = &[
        "endpoint_id",
        "status",
        "event_type",
        "since",
        "until",
        "limit",
        "cursor",
    ];

    fn from_query(params: &QueryParams) -> Result<Self, ApiError> {
        let limit = params.number("limit", MAX_PER_PAGE, DEFAULT_PER_PAGE)?;
        let endpoint_id = params
            .text("endpoint_id")
            .map(|raw| {
                Uuid::parse_str(raw).map_err(|_| {
                    ApiError::bad_parameter("endpoint_id", "endpoint_id must be a UUID")
                })
            })
            .transpose()?;
        let statuses = params
            .text("status")
            .map(|raw| raw.split(',').map(status).collect::<Result<Vec<_>, _>>())
            .transpose()?
            .unwrap_or_default();
        let event_type = params
            .text("event_type")
            .map(|t| {
                validation::event_types(vec![t.to_owned()])
                    .map(|mut v| v.remove(0))
                    .map_err(|e| ApiError::bad_parameter("event_type", e.message))
            })
            .transpose()?;
        let filters = Filters {
            statuses,
            event_type,
            since: params.time("since")?,
            until: params.time("until")?,
        };
        let cursor = params
            .text("cursor")
            .map(|raw| {
                Cursor::decode(raw).ok_or_else(|| {
                    ApiError::bad_parameter("cursor", "cursor is not one this API gave")
                })
            })
            .transpose()?;
        Ok(Search {
            endpoint_id,
            filters,
            cursor,
            limit,
        })
    }
}

fn status(raw: &str) -> Result<DeliveryStatus, ApiError> {
    serde_json::from_value(serde_json::Value::from(raw)).map_err(|_| {
        ApiError::bad_parameter(
            "status",
            "status must be pending, retrying, succeeded, failed or paused (a comma list)",
        )
    })
}

#[derive(Serialize)]
struct SearchPage<'a> {
    deliveries: Vec<DeliverySummary<'a>>,
    next_cursor: Option<String>,
}

pub(super) async fn search(
    State(state): State<DeliveriesState>,
    caller: Caller<Read>,
    ValidQuery(search): ValidQuery<Search>,
) -> Result<Response, ApiError> {
    let (shown, next) = state.history.search(caller.org(), &search).await?;
    Ok(Json(SearchPage {
        deliveries: shown.iter().map(DeliverySummary::from).collect(),
        next_cursor: next.map(|c| c.encode()),
    })
    .into_response())
}

#[derive(Serialize)]
struct DeliveryDetail<'a> {
    #[serde(flatten)]
    summary: DeliverySummary<'a>,
    /// The stored envelope verbatim: the exact bytes sent, field order included.
    payload: Option<Box<RawValue>>,
    attempts: &'a [Attempt],
}

pub(super) async fn detail(
    State(state): State<DeliveriesState>,
    caller: Caller<Read>,
    DeliveryId(id): DeliveryId,
    _: NoQuery,
) -> Result<Response, ApiError> {
    let (delivery, payload) = state.history.delivery(caller.org(), id).await?;
    let payload = payload
        .map(|payload| {
            RawValue::from_string(payload).map_err(|e| {
                tracing::error!(delivery_id = %id, error = %e, "stored payload is not JSON");
                ApiError::Internal
            })
        })
        .transpose()?;
    Ok(Json(DeliveryDetail {
        summary: DeliverySummary::from(&delivery),
        payload,
        attempts: &delivery.attempts,
    })
    .into_response())
}
