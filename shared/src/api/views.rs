//! Endpoints and deliveries as the API shows them, shared by the route families that
//! answer with them.

use crate::domain::time::{optional_rfc3339_millis, rfc3339_millis};
use crate::domain::{Delivery, DeliveryStatus, Endpoint, PausedBy};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

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

/// A delivery without its payload and attempts (lists and searches).
#[derive(Serialize)]
pub struct DeliverySummary<'a> {
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
    #[serde(serialize_with = "optional_rfc3339_millis")]
    next_attempt_at: Option<DateTime<Utc>>,
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
