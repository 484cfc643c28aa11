//! The sender's batch path: the jobs a queue handed out together, handled concurrently,
//! sharing endpoint reads and breaker updates (`batch`), with the batch's statistics
//! written and its metrics emitted at its end. The sender Lambda feeds it SQS batches
//! (`wiring::sqs_batch`), the local server's queue worker the jobs ready in its queue.

use super::batch::Batch;
use super::{Handled, Sender};
use crate::domain::Job;
use futures_util::future::join_all;
use std::fmt::Display;

/// A job as a queue handed it out.
pub struct QueuedJob<K> {
    /// What the queue knows the job's message by: a failure is reported as this.
    pub message_id: K,
    pub job: Job,
    /// The queue has handed this message out before: its attempt may have been made.
    pub redelivered: bool,
}

/// Handle a batch. Returns the message ids of the jobs whose handling hit a storage or
/// queue error, in the order given: the queue is to hand those out again.
pub async fn handle_batch<K: Display>(sender: &Sender, jobs: Vec<QueuedJob<K>>) -> Vec<K> {
    let batch = Batch::default();
    let batch = &batch;
    let outcomes = join_all(jobs.into_iter().map(|queued| async move {
        let id = queued.message_id;
        match sender.handle_in(batch, queued.job, queued.redelivered).await {
            Ok(handled) => {
                if handled == Handled::Skipped {
                    tracing::debug!(message_id = %id, "nothing to do (duplicate or stale)");
                }
                None
            }
            Err(err) => {
                tracing::error!(message_id = %id, error = %err, "job failed; the queue will retry it");
                Some(id)
            }
        }
    }))
    .await;
    sender.finish_batch(batch).await;
    sender.metrics.emit(&batch.tally.lines());
    outcomes.into_iter().flatten().collect()
}
