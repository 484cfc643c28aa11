//! `POST /org/{org_slug}/webhooks/deliveries/{delivery_id}/retry`: one more attempt,
//! whatever the delivery's status.

use crate::api::error::ApiError;
use crate::api::extract::auth::{Caller, Write};
use crate::api::extract::path::DeliveryId;
use crate::api::extract::query::NoQuery;
use crate::api::state::DeliveriesState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub(super) async fn retry(
    State(state): State<DeliveriesState>,
    caller: Caller<Write>,
    DeliveryId(id): DeliveryId,
    _: NoQuery,
) -> Result<Response, ApiError> {
    state.retries.retry(caller.org(), id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "queued": true, "delivery_id": id })),
    )
        .into_response())
}
