//! The local server's delivery queue: jobs wait out their delay on a timer in this
//! process, then join the jobs ready for the worker ([`Jobs`]), which are handed out in
//! turns across organisations and endpoints (`turns`).
//!
//! A queue made with [`MemoryQueue::kept`] also keeps every job until the worker says it
//! is done with it ([`MemoryQueue::done`]), as SQS keeps a message until it is deleted:
//! so a saved copy ([`MemoryQueue::outstanding`]) holds every job not finished yet,
//! including those being handled, and a restart can enqueue them again.
//!
//! A queue made with [`MemoryQueue::local`] is also bounded: it admits a new publish's
//! jobs only while the jobs queued (ready or waiting out a delay) and the room held by
//! publishes under way leave space for them ([`JobQueue::admit`]). Everything else is
//! enqueued whatever the bound, so no accepted work is lost.

mod turns;

use crate::domain::Job;
use crate::ports::{Admission, JobQueue, QueueError, QueueFull};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use turns::Turns;

/// SQS's longest delay. The timers could wait longer, but with the same limit the local
/// server hands later attempts to its scheduler just as AWS does.
const MAX_DELAY: Duration = Duration::from_secs(900);

/// What a refused publish is told to wait: the worker hands out hundreds of jobs a
/// second unless the receivers are slow, so a second frees room in most cases, and a
/// client that comes back too early is only refused again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct MemoryQueue {
    shared: Arc<Shared>,
}

/// The receiving end: the jobs ready, for the worker (or a test) to take.
pub struct Jobs {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// A job became ready, or a job handed out with a cap finished.
    wake: Notify,
    /// Jobs queued at most before a publish is refused.
    limit: usize,
    kept: Option<Kept>,
}

#[derive(Default)]
struct State {
    ready: Turns,
    /// Jobs waiting out their delay.
    delayed: usize,
    /// Room held by admitted publishes.
    reserved: usize,
    /// The receiving end is gone.
    closed: bool,
    /// Copies of jobs restored from a saved state and not yet taken, by their JSON.
    restored: HashMap<String, usize>,
}

impl Shared {
    fn new(limit: usize, kept: Option<Kept>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::default(),
            wake: Notify::new(),
            limit,
            kept,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `job` is ready; `was_delayed` if it waited out a delay (counted in one step with
    /// the push, so the queued count never dips and lets a publish overshoot).
    fn ready(&self, job: Job, was_delayed: bool) {
        {
            let mut state = self.state();
            state.delayed -= usize::from(was_delayed);
            state.ready.push(job);
        }
        self.wake.notify_one();
    }
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
    /// The queue, and the receiving end the worker takes ready jobs from.
    pub fn new() -> (Self, Jobs) {
        Self::made(usize::MAX, None)
    }

    /// As [`Self::new`], keeping each job until [`Self::done`] is called for it.
    pub fn kept() -> (Self, Jobs) {
        Self::made(usize::MAX, Some(Kept::default()))
    }

    /// The local server's queue: kept, and admitting a publish only while at most
    /// `limit` jobs would then be queued.
    pub fn local(limit: usize) -> (Self, Jobs) {
        Self::made(limit, Some(Kept::default()))
    }

    fn made(limit: usize, kept: Option<Kept>) -> (Self, Jobs) {
        let shared = Shared::new(limit, kept);
        (
            Self {
                shared: shared.clone(),
            },
            Jobs { shared },
        )
    }

    /// Jobs queued: ready, or waiting out their delay (not those handed out).
    pub fn queued(&self) -> usize {
        let state = self.shared.state();
        state.ready.len() + state.delayed
    }

    /// The worker is done with `job` (handled, or given up).
    pub fn done(&self, job: &Job) {
        self.shared.state().ready.finished(job);
        self.shared.wake.notify_one();
        let Some(kept) = &self.shared.kept else {
            return;
        };
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
        let Some(kept) = &self.shared.kept else {
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
        self.shared
            .kept
            .as_ref()
            .map_or(0, |k| k.changes.load(Ordering::Acquire))
    }

    /// Enqueue jobs saved earlier, each due when it was (at once if that has passed).
    /// Whatever the bound: they were accepted before the restart. Each is marked
    /// [`Self::take_restored`] until taken.
    pub async fn restore(&self, jobs: Vec<OutstandingJob>) -> Result<(), QueueError> {
        {
            let mut state = self.shared.state();
            for o in &jobs {
                *state.restored.entry(o.job.to_json()).or_default() += 1;
            }
        }
        let now = Utc::now();
        self.enqueue(
            jobs.into_iter()
                .map(|o| (o.job, (o.due - now).to_std().unwrap_or_default()))
                .collect(),
        )
        .await
    }

    /// Whether `job`, just taken, is a copy [`Self::restore`]d (its mark is used up): it
    /// may have been handed out before the restart and its attempt recorded, as a
    /// message SQS hands out again, so it must be handled as one (its follow-up made
    /// sure of, not skipped as a duplicate).
    pub fn take_restored(&self, job: &Job) -> bool {
        let mut state = self.shared.state();
        // The worker asks for every job it takes: once the restored copies are all
        // taken (soon after start), no job is serialized to find out.
        if state.restored.is_empty() {
            return false;
        }
        let key = job.to_json();
        let Some(left) = state.restored.get_mut(&key) else {
            return false;
        };
        *left -= 1;
        if *left == 0 {
            state.restored.remove(&key);
        }
        true
    }
}

impl Jobs {
    /// The next ready job in turn (tests and benchmarks, which make no cap).
    pub async fn recv(&mut self) -> Job {
        loop {
            // Made before looking: a job pushed after the look wakes it (`notify_one`
            // keeps the wake-up for a waiter that comes later).
            let woken = self.shared.wake.notified();
            if let Some(job) = self.shared.state().ready.pop() {
                return job;
            }
            woken.await;
        }
    }

    /// The next ready job in turn, if one is ready now.
    pub fn try_recv(&mut self) -> Option<Job> {
        self.shared.state().ready.pop()
    }

    /// At least one and at most `max` ready jobs, in turn, passing over the endpoints
    /// with `cap` jobs handed out and not [`MemoryQueue::done`]; waits until one is.
    pub async fn take(&mut self, max: usize, cap: usize) -> Vec<Job> {
        loop {
            let woken = self.shared.wake.notified();
            let taken: Vec<Job> = {
                let mut state = self.shared.state();
                std::iter::from_fn(|| state.ready.take(cap))
                    .take(max)
                    .collect()
            };
            if !taken.is_empty() {
                return taken;
            }
            woken.await;
        }
    }
}

impl Drop for Jobs {
    fn drop(&mut self) {
        self.shared.state().closed = true;
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    fn max_delay(&self) -> Duration {
        MAX_DELAY
    }

    async fn enqueue(&self, jobs: Vec<(Job, Duration)>) -> Result<(), QueueError> {
        if self.shared.state().closed {
            return Err(QueueError("the local worker has stopped".into()));
        }
        if let Some(kept) = &self.shared.kept {
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
                self.shared.ready(job, false);
                continue;
            }
            self.shared.state().delayed += 1;
            let shared = self.shared.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                shared.ready(job, true);
            });
        }
        Ok(())
    }

    /// Room for `jobs` if the jobs queued, the room already held and these fit in the
    /// limit, counted and held in one step (so concurrent publishes cannot overshoot).
    /// A publish with no job to enqueue, and any publish to an empty queue (a fan-out
    /// wider than the limit would otherwise never go), is always admitted.
    fn admit(&self, jobs: usize) -> Result<Admission, QueueFull> {
        let mut state = self.shared.state();
        let taken = state.ready.len() + state.delayed + state.reserved;
        if jobs > 0 && taken > 0 && taken.saturating_add(jobs) > self.shared.limit {
            return Err(QueueFull {
                retry_after: RETRY_AFTER,
            });
        }
        state.reserved += jobs;
        let shared = self.shared.clone();
        Ok(Admission::releasing(move || {
            shared.state().reserved -= jobs;
        }))
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

    /// Enqueue each job after its delay in seconds.
    async fn enqueue_after(queue: &MemoryQueue, jobs: &[(&Job, u64)]) {
        let jobs = jobs
            .iter()
            .map(|(job, secs)| ((*job).clone(), Duration::from_secs(*secs)))
            .collect();
        queue.enqueue(jobs).await.expect("enqueue");
    }

    #[tokio::test(start_paused = true)]
    async fn jobs_arrive_after_their_delay_in_delay_order() {
        let (queue, mut rx) = MemoryQueue::new();
        let late = job();
        let early = job();
        enqueue_after(&queue, &[(&late, 10), (&early, 2)]).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(rx.try_recv().is_none(), "nothing is due yet");
        assert_eq!(rx.recv().await, early);
        assert_eq!(rx.recv().await, late);
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
        assert_eq!(rx.recv().await, a.clone());
        queue.done(&a);
        assert!(queue.changes() > before);
        let mut left: Vec<Job> = queue.outstanding().into_iter().map(|o| o.job).collect();
        left.sort_by_key(Job::to_json);
        let mut expected = vec![a.clone(), b.clone()];
        expected.sort_by_key(Job::to_json);
        assert_eq!(left, expected, "the duplicate of a and b are not done");

        // Copies of one job keep their own due times.
        let (twice, _rx) = MemoryQueue::kept();
        enqueue_after(&twice, &[(&b, 7200), (&b, 60)]).await;
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
        assert_eq!(rx2.recv().await, a);
        assert!(
            restarted.take_restored(&a),
            "handed out before the restart, maybe"
        );
        assert!(!restarted.take_restored(&a), "one mark per copy restored");
        assert!(!queue.take_restored(&a), "enqueued, not restored");
        assert!(rx2.try_recv().is_none(), "b is not due for an hour");
        assert_eq!(restarted.outstanding().len(), 2);
    }

    #[tokio::test]
    async fn a_bounded_queue_admits_publishes_within_its_limit() {
        let (queue, mut rx) = MemoryQueue::local(3);
        let held = queue.admit(2).expect("room for 2");
        assert!(queue.admit(2).is_err(), "2 held, 2 more would pass 3");
        drop(queue.admit(1).expect("room for 1 more"));
        queue
            .enqueue(vec![
                (job(), Duration::ZERO),
                (job(), Duration::from_secs(1)),
            ])
            .await
            .expect("enqueue");
        drop(held);
        assert_eq!(queue.queued(), 2, "a delayed job counts too");
        let full = queue.admit(2).expect_err("2 queued, 2 more would pass 3");
        assert_eq!(full.retry_after, RETRY_AFTER);
        assert!(queue.admit(0).is_ok(), "a publish without jobs");
        // Accepted work is enqueued whatever the bound.
        queue
            .enqueue(vec![(job(), Duration::ZERO); 5])
            .await
            .expect("enqueue");
        assert_eq!(queue.queued(), 7);
        for _ in 0..7 {
            rx.recv().await;
        }
        assert_eq!(queue.queued(), 0);
        // An empty queue takes a fan-out wider than the limit (else it never could go).
        assert!(queue.admit(10).is_ok());
    }

    #[test]
    fn concurrent_admissions_never_overshoot() {
        let (queue, _rx) = MemoryQueue::local(50);
        let queue = &queue;
        let admitted: Vec<Admission> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(move || {
                        (0..20)
                            .filter_map(|_| queue.admit(1).ok())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().unwrap_or_default())
                .collect::<Vec<Admission>>()
        });
        assert_eq!(admitted.len(), 50);
        drop(admitted);
        assert!(
            queue.admit(50).is_ok(),
            "dropped admissions give their room back"
        );
    }
}
