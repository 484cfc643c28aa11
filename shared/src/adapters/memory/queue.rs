//! The local server's delivery queue: jobs wait out their delay on a timer in this
//! process, then reach the worker through a channel.
//!
//! A queue made with [`MemoryQueue::kept`] also keeps every job until the worker says it
//! is done with it ([`MemoryQueue::done`]), as SQS keeps a message until it is deleted:
//! so a saved copy ([`MemoryQueue::outstanding`]) holds every job not finished yet,
//! including those being handled, and a restart can enqueue them again.

use crate::domain::Job;
use crate::ports::{JobQueue, QueueError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;

/// SQS's longest delay. The timers could wait longer, but with the same limit the local
/// server hands later attempts to its scheduler just as AWS does.
const MAX_DELAY: Duration = Duration::from_secs(900);

#[derive(Clone)]
pub struct MemoryQueue {
    ready: mpsc::UnboundedSender<Job>,
    kept: Option<Arc<Kept>>,
}

/// A job not done yet, and when each copy of it enqueued is due (earliest first).
type KeptJob = (Job, Vec<DateTime<Utc>>);

/// The jobs not done yet, by their JSON (equal jobs are one entry, with a due time per
/// copy).
#[derive(Default)]
struct Kept {
    jobs: Mutex<HashMap<String, KeptJob>>,
    changes: AtomicU64,
}

impl Kept {
    /// The jobs, for a change: counted once the lock is held, so a saver that reads the
    /// count and then copies the jobs sees this change, or saves again after it.
    fn jobs_mut(&self) -> MutexGuard<'_, HashMap<String, KeptJob>> {
        let jobs = self.jobs();
        self.changes.fetch_add(1, Ordering::AcqRel);
        jobs
    }

    fn jobs(&self) -> MutexGuard<'_, HashMap<String, KeptJob>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A job not done yet and when it is (or was) due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutstandingJob {
    pub job: Job,
    pub due: DateTime<Utc>,
}

impl MemoryQueue {
    /// The queue, and the receiving end the worker reads due jobs from.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Job>) {
        let (ready, rx) = mpsc::unbounded_channel();
        (Self { ready, kept: None }, rx)
    }

    /// As [`Self::new`], keeping each job until [`Self::done`] is called for it.
    pub fn kept() -> (Self, mpsc::UnboundedReceiver<Job>) {
        let (ready, rx) = mpsc::unbounded_channel();
        (
            Self {
                ready,
                kept: Some(Arc::default()),
            },
            rx,
        )
    }

    /// The worker is done with `job` (handled, or given up).
    pub fn done(&self, job: &Job) {
        let Some(kept) = &self.kept else { return };
        let mut jobs = kept.jobs_mut();
        let key = job.to_json();
        if let Some((_, dues)) = jobs.get_mut(&key) {
            // Copies come due in order: the one done is the earliest.
            if !dues.is_empty() {
                dues.remove(0);
            }
            if dues.is_empty() {
                jobs.remove(&key);
            }
        }
    }

    /// Every job not done yet (each as often as it was enqueued and not done).
    pub fn outstanding(&self) -> Vec<OutstandingJob> {
        self.outstanding_with(|| ()).0
    }

    /// [`Self::outstanding`], and what `also` reads while no job can be enqueued or
    /// done: a copy of the store taken this way agrees with the jobs (the sender records
    /// an attempt before it is done with its job; the scheduler enqueues before it
    /// marks the due list handed over).
    pub fn outstanding_with<R>(&self, also: impl FnOnce() -> R) -> (Vec<OutstandingJob>, R) {
        let Some(kept) = &self.kept else {
            return (Vec::new(), also());
        };
        let jobs = kept.jobs();
        let read = also();
        let outstanding = jobs
            .values()
            .flat_map(|(job, dues)| {
                dues.iter().map(|due| OutstandingJob {
                    job: job.clone(),
                    due: *due,
                })
            })
            .collect();
        (outstanding, read)
    }

    /// Moves whenever the outstanding jobs may have changed.
    pub fn changes(&self) -> u64 {
        self.kept
            .as_ref()
            .map_or(0, |k| k.changes.load(Ordering::Acquire))
    }

    /// Enqueue jobs saved earlier, each due when it was (at once if that has passed).
    pub async fn restore(&self, jobs: Vec<OutstandingJob>) -> Result<(), QueueError> {
        let now = Utc::now();
        self.enqueue(
            jobs.into_iter()
                .map(|o| (o.job, (o.due - now).to_std().unwrap_or_default()))
                .collect(),
        )
        .await
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    fn max_delay(&self) -> Duration {
        MAX_DELAY
    }

    async fn enqueue(&self, jobs: Vec<(Job, Duration)>) -> Result<(), QueueError> {
        if self.ready.is_closed() {
            return Err(QueueError("the local worker has stopped".into()));
        }
        if let Some(kept) = &self.kept {
            let now = Utc::now();
            let mut kept = kept.jobs_mut();
            for (job, delay) in &jobs {
                let due = now + chrono::Duration::from_std(*delay).unwrap_or_default();
                let (_, dues) = kept
                    .entry(job.to_json())
                    .or_insert_with(|| (job.clone(), Vec::new()));
                let at = dues.partition_point(|d| *d <= due);
                dues.insert(at, due);
            }
        }
        for (job, delay) in jobs {
            if delay.is_zero() {
                let _ = self.ready.send(job);
                continue;
            }
            let ready = self.ready.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = ready.send(job);
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::org::acme;
    use crate::domain::{DeliveryJob, EventRef};
    use uuid::Uuid;

    fn job() -> Job {
        let id = Uuid::now_v7();
        let event = EventRef {
            id: "evt_1".into(),
            event_type: "a.b".into(),
            created_at: crate::domain::now(),
        };
        DeliveryJob::new(&acme(), id, id, event, None).automatic(1)
    }

    #[tokio::test(start_paused = true)]
    async fn jobs_arrive_after_their_delay_in_delay_order() {
        let (queue, mut rx) = MemoryQueue::new();
        let late = job();
        let early = job();
        queue
            .enqueue(vec![
                (late.clone(), Duration::from_secs(10)),
                (early.clone(), Duration::from_secs(2)),
            ])
            .await
            .expect("enqueue");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(rx.try_recv().is_err(), "nothing is due yet");
        assert_eq!(rx.recv().await, Some(early));
        assert_eq!(rx.recv().await, Some(late));
    }

    #[tokio::test]
    async fn a_kept_queue_holds_jobs_until_done_and_restores_them() {
        let (queue, mut rx) = MemoryQueue::kept();
        let (a, b) = (job(), job());
        queue
            .enqueue(vec![
                (a.clone(), Duration::ZERO),
                (a.clone(), Duration::ZERO),
                (b.clone(), Duration::from_secs(3600)),
            ])
            .await
            .expect("enqueue");
        let before = queue.changes();
        assert_eq!(rx.recv().await, Some(a.clone()));
        queue.done(&a);
        assert!(queue.changes() > before);
        let mut left: Vec<Job> = queue.outstanding().into_iter().map(|o| o.job).collect();
        left.sort_by_key(Job::to_json);
        let mut expected = vec![a.clone(), b.clone()];
        expected.sort_by_key(Job::to_json);
        assert_eq!(left, expected, "the duplicate of a and b are not done");

        // Copies of one job keep their own due times.
        let (twice, _rx) = MemoryQueue::kept();
        twice
            .enqueue(vec![
                (b.clone(), Duration::from_secs(7200)),
                (b.clone(), Duration::from_secs(60)),
            ])
            .await
            .expect("enqueue");
        let mut dues: Vec<_> = twice.outstanding().into_iter().map(|o| o.due).collect();
        dues.sort();
        assert!(
            dues[1] - dues[0] > chrono::Duration::minutes(118),
            "{dues:?}"
        );
        let late = queue
            .outstanding()
            .into_iter()
            .find(|o| o.job == b)
            .expect("b");
        assert!(late.due > Utc::now() + chrono::Duration::minutes(59));

        // Another process's queue takes them up again, each when due.
        let (restarted, mut rx2) = MemoryQueue::kept();
        restarted
            .restore(queue.outstanding())
            .await
            .expect("restore");
        assert_eq!(rx2.recv().await, Some(a));
        assert!(rx2.try_recv().is_err(), "b is not due for an hour");
        assert_eq!(restarted.outstanding().len(), 2);
    }
}
