//! A manual retry: one more attempt at a delivery, whatever its status, sent by the
//! sender (which checks the endpoint is active before it sends).

use super::lookup::{self, RequestError};
use super::sender::delivery_job;
use crate::domain::OrgSlug;
use crate::ports::{DeliveryStore, EndpointStore, EventStore, JobQueue, RetryOf};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub struct ManualRetries {
    pub endpoints: Arc<dyn EndpointStore>,
    pub deliveries: Arc<dyn DeliveryStore>,
    pub events: Arc<dyn EventStore>,
    pub queue: Arc<dyn JobQueue>,
}

impl ManualRetries {
    /// Record the request on the delivery, then queue the attempt.
    pub async fn retry(&self, org: &OrgSlug, id: Uuid) -> Result<(), RequestError> {
        let delivery =
            lookup::delivery(self.endpoints.as_ref(), self.deliveries.as_ref(), org, id).await?;
        let request = Uuid::now_v7();
        let delivery = self
            .deliveries
            .request_retry(delivery.key, request, RetryOf::Any)
            .await?
            .ok_or(RequestError::NotFound)?;
        // The job carries the envelope, as a first attempt's does, so the sender reads none.
        let payload = self
            .events
            .get_event(org, &delivery.event_id)
            .await?
            .map(|e| e.payload);
        let job = delivery_job(&delivery, payload.as_deref()).manual(request);
        self.queue.enqueue(vec![(job, Duration::ZERO)]).await?;
        tracing::info!(org = org.as_str(), delivery_id = %id, "manual retry queued");
        Ok(())
    }
}
