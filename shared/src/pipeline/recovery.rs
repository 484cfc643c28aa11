//! Starting a recovery: every `failed` delivery of an endpoint created in a window is
//! sent again as a manual attempt, by a job that works a chunk at a time (no cap on the
//! count, any window; the sender runs it). One runs per endpoint at a time. A dry run
//! only counts, up to [`DRY_RUN_CAP`].

use super::lookup::{self, RequestError};
use crate::domain::OrgSlug;
use crate::domain::job::JOB_VERSION;
use crate::domain::recovery::{Recovery, RecoveryStatus};
use crate::domain::time::whole_millis;
use crate::domain::{Job, now};
use crate::ports::{DeliveryStore, EndpointStore, JobQueue, RecoveryStore, StoreError};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A dry run counts no further: its reads stay bounded however large the window.
pub const DRY_RUN_CAP: u64 = 10_000;

/// What a dry run found: `count` deliveries, and whether it stopped at [`DRY_RUN_CAP`]
/// (there are more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub count: u64,
    pub capped: bool,
}

impl Count {
    /// What `counted` (read up to one past `cap`) says.
    fn capped_at(counted: u64, cap: u64) -> Self {
        Self {
            count: counted.min(cap),
            capped: counted > cap,
        }
    }
}

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
    /// How many deliveries a recovery of `scope` would send, up to [`DRY_RUN_CAP`].
    pub async fn count(&self, org: &OrgSlug, scope: Scope) -> Result<Count, RequestError> {
        let endpoint = lookup::endpoint(self.endpoints.as_ref(), org, scope.endpoint_id).await?;
        let (since, until) = scope.bounds(now());
        // One past the cap tells "exactly the cap" from "more".
        let counted = self
            .deliveries
            .count_failed(endpoint.number, since, until, DRY_RUN_CAP + 1)
            .await?;
        Ok(Count::capped_at(counted, DRY_RUN_CAP))
    }

    /// Record a running recovery and queue its first chunk; `RecoveryRunning` if the
    /// endpoint has one running already.
    pub async fn start(&self, org: &OrgSlug, scope: Scope) -> Result<Recovery, RequestError> {
        let endpoint = lookup::endpoint(self.endpoints.as_ref(), org, scope.endpoint_id).await?;
        let created_at = now();
        let replacing = self.running_check(org, endpoint.id, created_at).await?;
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
            updated_at: created_at,
            finished_at: None,
            position: None,
        };
        match self.recoveries.insert_recovery(&recovery, replacing).await {
            // Another start got in between the check and the write: it is the running one.
            Err(StoreError::AlreadyExists) => {
                let winner = self.recoveries.latest_recovery_id(endpoint.id).await?;
                return Err(RequestError::RecoveryRunning(winner.unwrap_or(recovery.id)));
            }
            other => other?,
        }
        let job = Job::RecoverEndpoint {
            v: JOB_VERSION,
            org: org.to_owned(),
            recovery_id: recovery.id,
        };
        if let Err(err) = self.queue.enqueue(vec![(job, Duration::ZERO)]).await {
            // Nothing will work through it: finish it, so it does not hold the endpoint
            // (should the job have reached the queue after all, it finds it done). A
            // finish that fails too leaves it to `STALLED_AFTER`.
            let finished = recovery.advanced(None, 0, true, now());
            if let Err(finish) = self.recoveries.advance_recovery(&recovery, &finished).await {
                tracing::warn!(recovery_id = %recovery.id, error = %finish, "a recovery that could not be queued stays running until it counts as stalled");
            }
            return Err(err.into());
        }
        tracing::info!(org = org.as_str(), endpoint_id = %endpoint.id, recovery_id = %recovery.id, since = %recovery.since, until = %recovery.until, "recovery started");
        Ok(recovery)
    }

    /// The endpoint's latest recovery's id, for a start to replace; `RecoveryRunning`
    /// if that one still runs at `at`.
    async fn running_check(
        &self,
        org: &OrgSlug,
        endpoint_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Option<Uuid>, RequestError> {
        let Some(latest) = self.recoveries.latest_recovery_id(endpoint_id).await? else {
            return Ok(None);
        };
        match self.recoveries.get_recovery(org, latest).await? {
            Some(r) if r.is_running_at(at) => Err(RequestError::RecoveryRunning(r.id)),
            _ => Ok(Some(latest)),
        }
    }

    /// The organisation's recovery `id`.
    pub async fn get(&self, org: &OrgSlug, id: Uuid) -> Result<Recovery, RequestError> {
        self.recoveries
            .get_recovery(org, id)
            .await?
            .ok_or(RequestError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::recovery::STALLED_AFTER;

    #[test]
    fn a_count_past_the_cap_says_so() {
        let count = |counted| Count::capped_at(counted, DRY_RUN_CAP);
        assert_eq!(
            count(0),
            Count {
                count: 0,
                capped: false
            }
        );
        assert_eq!(
            count(DRY_RUN_CAP),
            Count {
                count: DRY_RUN_CAP,
                capped: false
            }
        );
        assert_eq!(
            count(DRY_RUN_CAP + 1),
            Count {
                count: DRY_RUN_CAP,
                capped: true
            }
        );
    }

    #[test]
    fn a_running_recovery_holds_its_endpoint_until_done_or_stalled() {
        let at = now();
        let running = Recovery {
            id: Uuid::now_v7(),
            org: crate::domain::org::acme(),
            endpoint_id: Uuid::now_v7(),
            endpoint_number: crate::domain::EndpointNumber(1),
            since: at,
            until: at,
            status: RecoveryStatus::Running,
            queued: 0,
            created_at: at,
            updated_at: at,
            finished_at: None,
            position: None,
        };
        assert!(running.is_running_at(at));
        assert!(running.is_running_at(at + STALLED_AFTER - chrono::Duration::seconds(1)));
        assert!(!running.is_running_at(at + STALLED_AFTER), "stalled");
        // Each chunk moves it on.
        let moved = running.advanced(None, 5, false, at + STALLED_AFTER);
        assert!(moved.is_running_at(at + STALLED_AFTER));
        let done = running.advanced(None, 5, true, at);
        assert!(!done.is_running_at(at));
    }
}
