//! Endpoint changes that start work in the background: resuming an endpoint re-queues
//! its held deliveries, deleting one purges its history.

use super::lookup::{self, RequestError};
use crate::domain::OrgSlug;
use crate::domain::job::JOB_VERSION;
use crate::domain::{Endpoint, EndpointChanges, Job, now};
use crate::ports::{EndpointStore, JobQueue};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// When the second resume pass runs: after any attempt begun before the resume has
/// ended (the outbound timeout and a record write well within it).
pub const RESUME_RECHECK: Duration = Duration::from_secs(90);

pub struct EndpointLifecycle {
    pub endpoints: Arc<dyn EndpointStore>,
    pub queue: Arc<dyn JobQueue>,
    /// [`RESUME_RECHECK`] as wired; tests whose attempts end at once shorten it.
    pub resume_recheck: Duration,
}

impl EndpointLifecycle {
    /// Apply `changes`; a resume (which resets the failures) re-queues the held
    /// deliveries, a chunk per job however many there are.
    pub async fn update(
        &self,
        org: &OrgSlug,
        id: Uuid,
        changes: &EndpointChanges,
    ) -> Result<Endpoint, RequestError> {
        let endpoint = self
            .endpoints
            .update_endpoint(org, id, changes, now())
            .await?
            .ok_or(RequestError::NotFound)?;
        tracing::info!(org = org.as_str(), endpoint_id = %id, is_active = endpoint.is_active, "endpoint updated");
        if changes.resets_failures() {
            let job = Job::ResumeEndpoint {
                v: JOB_VERSION,
                org: org.to_owned(),
                endpoint_id: id,
            };
            // Once more a little later: a sender holding a delivery at this very moment,
            // or an index not yet showing it, is caught by the second pass.
            self.queue
                .enqueue(vec![
                    (job.clone(), Duration::ZERO),
                    (job, self.resume_recheck),
                ])
                .await?;
        }
        Ok(endpoint)
    }

    /// Delete the endpoint; its history goes in bounded chunks, one job each, so no
    /// invocation can time out.
    pub async fn delete(&self, org: &OrgSlug, id: Uuid) -> Result<(), RequestError> {
        // Its number keys its history, which the purge deletes after the endpoint is gone.
        let endpoint = lookup::endpoint(self.endpoints.as_ref(), org, id).await?;
        if !self.endpoints.delete_endpoint(org, id).await? {
            return Err(RequestError::NotFound);
        }
        tracing::info!(org = org.as_str(), endpoint_id = %id, "endpoint deleted");
        let job = Job::PurgeEndpoint {
            v: JOB_VERSION,
            org: org.to_owned(),
            endpoint_id: id,
            endpoint_number: endpoint.number,
        };
        // Should this enqueue fail, the API already hides the history and TTL removes it.
        if let Err(err) = self.queue.enqueue(vec![(job, Duration::ZERO)]).await {
            tracing::error!(org = org.as_str(), endpoint_id = %id, error = %err, "purge not enqueued; history left to expire");
        }
        Ok(())
    }
}
