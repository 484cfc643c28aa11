//! Finding what a request names, within its organisation: one rule for "not found",
//! used by every request that names an endpoint or a delivery.

use crate::domain::OrgSlug;
use crate::domain::{Delivery, DeliveryKey, Endpoint};
use crate::ports::{DeliveryStore, EndpointStore, QueueError, StoreError};
use thiserror::Error;
use uuid::Uuid;

/// Why a request other than a publish failed.
#[derive(Debug, Error)]
pub enum RequestError {
    /// No such endpoint, delivery or recovery in the organisation (another
    /// organisation's is not found either).
    #[error("not found")]
    NotFound,
    /// The endpoint has recovery `.0` running: one at a time.
    #[error("recovery {0} is running on this endpoint")]
    RecoveryRunning(Uuid),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// The organisation's endpoint `id`.
pub async fn endpoint(
    endpoints: &dyn EndpointStore,
    org: &OrgSlug,
    id: Uuid,
) -> Result<Endpoint, RequestError> {
    endpoints
        .get_endpoint(org, id)
        .await?
        .ok_or(RequestError::NotFound)
}

/// The delivery, if it belongs to `org` and its endpoint still exists (a deleted
/// endpoint's history is gone at once for the API, while the purge catches up). An id
/// names its place (see `DeliveryKey`): one read, and the stored id must be that id.
pub async fn delivery(
    endpoints: &dyn EndpointStore,
    deliveries: &dyn DeliveryStore,
    org: &OrgSlug,
    id: Uuid,
) -> Result<Delivery, RequestError> {
    let key = DeliveryKey::from_id(id).ok_or(RequestError::NotFound)?;
    let delivery = deliveries
        .get_delivery(key)
        .await?
        .filter(|d| d.org == *org && d.id == id)
        .ok_or(RequestError::NotFound)?;
    endpoint(endpoints, org, delivery.endpoint_id).await?;
    Ok(delivery)
}
