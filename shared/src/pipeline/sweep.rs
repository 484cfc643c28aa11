//! The recovery sweep: re-queue deliveries that are overdue. It runs every minute (a
//! scheduled Lambda in AWS, a timer in the local server) and is what makes "stored" mean
//! "will be sent": a delivery whose enqueue failed after it was written, or whose sender
//! died mid-attempt, is overdue once `grace` has passed and goes back on the queue.

use super::sender::next_job;
use crate::domain::now;
use crate::ports::{DeliveryStore, JobQueue, QueueError, StoreError};
use std::time::Duration;
use thiserror::Error;

/// Longer than any healthy path from "due" to "claimed": a lease (a POST's timeout plus
/// margin) and queue latency. Anything later than this has been lost.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(120);
/// Deliveries re-queued per run at most; the next run takes the rest.
pub const SWEEP_LIMIT: u32 = 500;

#[derive(Debug, Error)]
pub enum SweepError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Re-queue up to `limit` deliveries due more than `grace` ago and not held by a live
/// claim; returns how many. Each is marked due now, so it is not re-queued again until
/// another `grace` has passed.
pub async fn sweep(
    deliveries: &dyn DeliveryStore,
    queue: &dyn JobQueue,
    grace: Duration,
    limit: u32,
) -> Result<usize, SweepError> {
    let at = now();
    let cutoff = at - chrono::Duration::from_std(grace).unwrap_or_default();
    let overdue: Vec<_> = deliveries
        .due_deliveries(cutoff, limit)
        .await?
        .into_iter()
        .filter(|d| d.lease.is_none_or(|l| l.until < at))
        .collect();
    // Mark first, each only if still as seen, so a delivery a sender just rescheduled
    // is left alone; should the enqueue then fail, the next sweep finds them again.
    let mut jobs = Vec::with_capacity(overdue.len());
    for d in &overdue {
        let Some(seen) = d.next_attempt_at else {
            continue;
        };
        if deliveries.touch_due(d.id, seen, at).await? {
            jobs.push((next_job(d), Duration::ZERO));
        }
    }
    let count = jobs.len();
    if count > 0 {
        queue.enqueue(jobs).await?;
    }
    if count > 0 {
        tracing::info!(count, "re-queued overdue deliveries");
    }
    Ok(count)
}
