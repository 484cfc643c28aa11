//! The delivery queue.

use crate::domain::Job;
use async_trait::async_trait;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
#[error("queue error: {0}")]
pub struct QueueError(pub String);

/// A bounded queue has no room for a new publish's jobs: try again after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("the delivery queue is full; retry in {retry_after:?}")]
pub struct QueueFull {
    pub retry_after: Duration,
}

/// Room a bounded queue holds for a publish's jobs until dropped: the publish enqueues
/// them while it holds it, so concurrent publishes cannot together take the queue past
/// its bound (each is admitted against the room the others hold).
#[must_use = "the room is given back when the admission is dropped"]
pub struct Admission(Option<Box<dyn FnOnce() + Send + Sync>>);

impl Admission {
    /// Room on a queue without a bound: nothing to give back.
    pub fn unbounded() -> Self {
        Self(None)
    }

    /// Room that `release` gives back.
    pub fn releasing(release: impl FnOnce() + Send + Sync + 'static) -> Self {
        Self(Some(Box::new(release)))
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Admission(held)"
        } else {
            "Admission(unbounded)"
        })
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(release) = self.0.take() {
            release();
        }
    }
}

/// The delivery queue: SQS in AWS, an in-process queue locally.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// The longest delay the queue takes: an attempt due later waits in the store's due
    /// list (`Schedule`) instead.
    fn max_delay(&self) -> Duration;
    /// Enqueue jobs, each visible after its delay (capped at the queue's maximum). Never
    /// refused for want of room: jobs of work already accepted (retries, hand-offs,
    /// resumes) always go on.
    async fn enqueue(&self, jobs: Vec<(Job, Duration)>) -> Result<(), QueueError>;
    /// Room for `jobs` more jobs of a new publish, held until the admission is dropped;
    /// asked before anything is stored. A queue without a bound (SQS) always admits.
    fn admit(&self, jobs: usize) -> Result<Admission, QueueFull> {
        let _ = jobs;
        Ok(Admission::unbounded())
    }
}
