//! How attempts due later than the queue can wait are kept.

use super::error::StoreResult;
use crate::domain::ScheduledAttempt;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Automatic attempts due later than the queue can delay a message, by due minute.
#[async_trait]
pub trait Schedule: Send + Sync {
    async fn schedule(&self, attempt: &ScheduledAttempt) -> StoreResult<()>;
    /// Every attempt due in the minute starting at `minute`.
    async fn due_in_minute(&self, minute: DateTime<Utc>) -> StoreResult<Vec<ScheduledAttempt>>;
    /// The last minute the scheduler has handed to the queue, if any.
    async fn scheduled_through(&self) -> StoreResult<Option<DateTime<Utc>>>;
    /// Move that mark from `seen` to `minute`; `false` if another scheduler moved it.
    async fn mark_scheduled_through(
        &self,
        seen: Option<DateTime<Utc>>,
        minute: DateTime<Utc>,
    ) -> StoreResult<bool>;
}
