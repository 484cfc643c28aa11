//! The delivery queue.

use crate::domain::Job;
use async_trait::async_trait;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
#[error("queue error: {0}")]
pub struct QueueError(pub String);

/// The delivery queue: SQS in AWS, an in-process queue locally.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// The longest delay the queue takes: an attempt due later waits in the store's due
    /// list (`Schedule`) instead.
    fn max_delay(&self) -> Duration;
    /// Enqueue jobs, each visible after its delay (capped at the queue's maximum).
    async fn enqueue(&self, jobs: Vec<(Job, Duration)>) -> Result<(), QueueError>;
}
