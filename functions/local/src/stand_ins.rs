//! The local stand-ins for the sender and scheduler Lambdas, run as tasks of the server.

use shared::adapters::memory::MemoryStore;
use shared::adapters::memory::queue::{Jobs, MemoryQueue};
use shared::domain::Job;
use shared::pipeline::Sender;
use shared::pipeline::queue_batch::{QueuedJob, handle_batch};
use shared::pipeline::scheduler::run_now;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Jobs at most in flight at once, as a Lambda's concurrency would bound them.
const WORKER_CONCURRENCY: usize = 32;
/// Jobs handed out together at most, as SQS hands the sender Lambda up to 10 messages.
const BATCH_SIZE: u32 = 10;
/// How long a job whose handling failed waits before it is handled again.
const REDELIVERY_PAUSE: Duration = Duration::from_secs(5);
/// Handlings of one job at most, as the queue's `maxReceiveCount` in AWS.
const MAX_RECEIVES: u32 = 5;
/// How often the scheduler stand-in runs.
const SCHEDULER_EVERY: Duration = Duration::from_secs(10);

/// A job the worker took from the queue, numbered as SQS would give it a message id.
struct Handout {
    message_id: u64,
    job: Job,
    /// Saved before a restart: maybe handed out before it, as SQS's receive count says.
    restored: bool,
}

/// The local stand-in for the sender Lambda: the jobs ready in the queue, taken in turns
/// (across organisations, then endpoints) up to [`BATCH_SIZE`] at a time and handled as
/// one batch by the Lambda's own batch path, batches concurrently.
///
/// A slot is free before jobs are taken, so a job taken never waits for one: the turn
/// order is the order of handling. An endpoint with the sender's cap of jobs handed out
/// (`ENDPOINT_MAX_IN_FLIGHT`) is passed over until one of them is done, so a slow
/// endpoint's backlog holds at most that many of the slots, and its jobs do not sit in
/// slots waiting for the sender's own cap (which stays the guarantee).
pub async fn run_worker(sender: Arc<Sender>, queue: Arc<MemoryQueue>, mut jobs: Jobs) {
    let cap = usize::try_from(sender.settings.endpoint_max_in_flight).unwrap_or(usize::MAX);
    let slots = Arc::new(Semaphore::new(WORKER_CONCURRENCY));
    let mut message_ids = 0u64..;
    loop {
        let Ok(mut held) = slots.clone().acquire_owned().await else {
            return;
        };
        // Only this loop takes slots: those free now stay free until it takes them.
        let room = (slots.available_permits() + 1).min(BATCH_SIZE as usize);
        let handouts: Vec<Handout> = jobs
            .take(room, cap)
            .await
            .into_iter()
            .zip(&mut message_ids)
            .map(|(job, message_id)| Handout {
                message_id,
                restored: queue.take_restored(&job),
                job,
            })
            .collect();
        let more = u32::try_from(handouts.len() - 1).unwrap_or(0);
        if more > 0 {
            let Ok(rest) = slots.clone().try_acquire_many_owned(more) else {
                return;
            };
            held.merge(rest);
        }
        let sender = sender.clone();
        let queue = queue.clone();
        tokio::spawn(async move {
            handle_until_done(&sender, &queue, handouts).await;
            drop(held);
        });
    }
}

/// Handle a batch; its jobs whose handling failed are handed out again (together) after
/// a pause, marked as seen before, as SQS would after its visibility timeout, and given
/// up after [`MAX_RECEIVES`] (SQS would move them to the dead-letter queue). Each job is
/// done in the queue once handled or given up, so a saved state keeps it until then.
async fn handle_until_done(sender: &Sender, queue: &MemoryQueue, mut handouts: Vec<Handout>) {
    for receive in 1..=MAX_RECEIVES {
        let batch = handouts
            .iter()
            .map(|h| QueuedJob {
                message_id: h.message_id,
                job: h.job.clone(),
                redelivered: receive > 1 || h.restored,
            })
            .collect();
        let failed = handle_batch(sender, batch).await;
        let (again, handled): (Vec<_>, Vec<_>) = handouts
            .into_iter()
            .partition(|h| failed.contains(&h.message_id));
        for h in &handled {
            queue.done(&h.job);
        }
        handouts = again;
        if handouts.is_empty() {
            return;
        }
        if receive < MAX_RECEIVES {
            tracing::warn!(
                jobs = handouts.len(),
                pause = ?REDELIVERY_PAUSE,
                "handling the failed jobs again after a pause"
            );
            tokio::time::sleep(REDELIVERY_PAUSE).await;
        }
    }
    tracing::error!(
        jobs = handouts.len(),
        "jobs failed {MAX_RECEIVES} times; given up"
    );
    for h in &handouts {
        queue.done(&h.job);
    }
}

/// The local stand-in for the scheduler Lambda (run more often than every minute: a
/// run hands over only what is due and not handed yet).
pub async fn run_scheduler(store: Arc<MemoryStore>, queue: Arc<MemoryQueue>) {
    let mut every = tokio::time::interval(SCHEDULER_EVERY);
    loop {
        every.tick().await;
        if let Err(err) = run_now(store.as_ref(), queue.as_ref()).await {
            tracing::warn!(error = %err, "scheduler failed");
        }
    }
}
