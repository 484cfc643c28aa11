//! The scheduler: every minute (a scheduled Lambda in AWS, a timer in the local server),
//! hand the queue the automatic attempts due in the coming minute. They waited in the
//! store's due list, not in the queue: a wait of hours costs one write, not a message
//! cycling through the queue every 15 minutes.

use crate::domain::now;
use crate::domain::time::minute_of;
use crate::ports::{JobQueue, QueueError, Schedule, StoreError};
use chrono::{DateTime, Utc};
use std::time::Duration;
use thiserror::Error;

/// Minutes one run catches up at most (after an outage, the next runs take the rest).
pub const CATCH_UP_MINUTES: u32 = 60;

#[derive(Debug, Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Hand the queue every attempt due up to the end of `at`'s minute that is not handed
/// yet, minute by minute from where the last run stopped, each with the delay left until
/// it is due. Returns how many. The mark moves only after a minute's jobs are enqueued,
/// so a failure repeats that minute (a duplicate job records nothing) and loses none.
pub async fn run(
    schedule: &dyn Schedule,
    queue: &dyn JobQueue,
    at: DateTime<Utc>,
) -> Result<usize, SchedulerError> {
    let current = minute_of(at);
    let mut seen = schedule.scheduled_through().await?;
    let mut minute = seen.map_or(current, |m| m + chrono::Duration::minutes(1));
    let mut handed = 0;
    for _ in 0..CATCH_UP_MINUTES {
        if minute > current {
            break;
        }
        let jobs: Vec<_> = schedule
            .due_in_minute(minute)
            .await?
            .into_iter()
            .map(|a| {
                let wait = (a.at - at).to_std().unwrap_or(Duration::ZERO);
                (a.into_job(), wait)
            })
            .collect();
        handed += jobs.len();
        if !jobs.is_empty() {
            queue.enqueue(jobs).await?;
        }
        if !schedule.mark_scheduled_through(seen, minute).await? {
            // Another run moved the mark: it carries on from there.
            break;
        }
        seen = Some(minute);
        minute += chrono::Duration::minutes(1);
    }
    if handed > 0 {
        tracing::info!(count = handed, "due attempts handed to the queue");
    }
    Ok(handed)
}

/// [`run`] at the current time.
pub async fn run_now(
    schedule: &dyn Schedule,
    queue: &dyn JobQueue,
) -> Result<usize, SchedulerError> {
    run(schedule, queue, now()).await
}
