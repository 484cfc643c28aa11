//! The deliveries route family (one Lambda): an endpoint's delivery history, the
//! organisation's delivery search, one delivery with its attempts, a manual retry, an
//! endpoint's hourly statistics, and recoveries.

mod history;
mod recovery;
mod retry;
mod stats;

use super::request_metrics::labelled;
use super::state::DeliveriesState;
use axum::Router;
use axum::routing::{get, post};

pub fn routes(state: DeliveriesState) -> Router {
    labelled(
        Router::new()
            .route(
                "/org/{org_slug}/webhooks/endpoints/{endpoint_id}/deliveries",
                get(history::endpoint_page),
            )
            .route("/org/{org_slug}/webhooks/deliveries", get(history::search))
            .route(
                "/org/{org_slug}/webhooks/deliveries/{delivery_id}",
                get(history::detail),
            )
            .route(
                "/org/{org_slug}/webhooks/deliveries/{delivery_id}/retry",
                post(retry::retry),
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
            .with_state(state),
        "deliveries",
    )
}
