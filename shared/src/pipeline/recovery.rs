//! Starting a recovery: every `failed` delivery of an endpoint created in a window is
//! sent again as a manual attempt, by a job that works a chunk at a time (no cap on the
//! count, any window; the sender runs it). A dry run only counts.

use super::lookup::{self, RequestError};
use crate::domain::OrgSlug;
use crate::domain::job::JOB_VERSION;
use crate::domain::recovery::{Recovery, RecoveryStatus};
use crate::domain::time::whole_millis;
use crate::domain::{Job, now};
use crate::ports::{DeliveryStore, EndpointStore, JobQueue, RecoveryStore};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub struct Recoveries {
    pub endpoints: Arc<dyn EndpointStore>,
    pub deliveries: Arc<dyn DeliveryStore>,
    pub recoveries: Arc<dyn RecoveryStore>,
    pub queue: Arc<dyn JobQueue>,
}

/// What a recovery covers, as asked: the failed deliveries of one endpoint created in
/// `[since, until)`.
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    pub endpoint_id: Uuid,
    pub since: DateTime<Utc>,
    /// Open-ended: up to the request.
    pub until: Option<DateTime<Utc>>,
}

impl Scope {
    /// Nothing is created after the request at `at`, so `until` ends there at the latest
    /// (and without one, everything created up to it: times are whole milliseconds, so
    /// one created in this very millisecond is included too). Both ends are cut to whole
    /// milliseconds, as stored times are. An `until` not later than `since` is an empty
    /// window.
    fn bounds(self, at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let latest = at + chrono::Duration::milliseconds(1);
        let until = self.until.map_or(latest, |u| whole_millis(u).min(latest));
        (whole_millis(self.since), until)
    }
}

impl Recoveries {
    /// How many deliveries a recovery of `scope` would send.
    pub async fn count(&self, org: &OrgSlug, scope: Scope) -> Result<u64, RequestError> {
        let endpoint = lookup::endpoint(self.endpoints.as_ref(), org, scope.endpoint_id).await?;
        let (since, until) = scope.bounds(now());
        Ok(self
            .deliveries
            .count_failed(endpoint.number, since, until)
            .await?)
    }

    /// Record a running recovery and queue its first chunk.
    pub async fn start(&self, org: &OrgSlug, scope: Scope) -> Result<Recovery, RequestError> {
        let endpoint = lookup::endpoint(self.endpoints.as_ref(), org, scope.endpoint_id).await?;
        let created_at = now();
        let (since, until) = scope.bounds(created_at);
        let recovery = Recovery {
            id: Uuid::now_v7(),
            org: org.to_owned(),
            endpoint_id: endpoint.id,
            endpoint_number: endpoint.number,
            since,
            until,
            status: RecoveryStatus::Running,
            queued: 0,
            created_at,
            finished_at: None,
            position: None,
        };
        self.recoveries.insert_recovery(&recovery).await?;
        let job = Job::RecoverEndpoint {
            v: JOB_VERSION,
            org: org.to_owned(),
            recovery_id: recovery.id,
        };
        self.queue.enqueue(vec![(job, Duration::ZERO)]).await?;
        tracing::info!(org = org.as_str(), endpoint_id = %endpoint.id, recovery_id = %recovery.id, since = %recovery.since, until = %recovery.until, "recovery started");
        Ok(recovery)
    }

    /// The organisation's recovery `id`.
    pub async fn get(&self, org: &OrgSlug, id: Uuid) -> Result<Recovery, RequestError> {
        self.recoveries
            .get_recovery(org, id)
            .await?
            .ok_or(RequestError::NotFound)
    }
}
