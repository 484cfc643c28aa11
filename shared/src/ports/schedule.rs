//! How attempts due later than the queue can wait are kept.

use super::error::StoreError;
use crate::domain::ScheduledAttempt;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Automatic attempts due later than the queue can delay a message, by due minute.
#[async_trait]
pub trait Schedule: Send + Sync {
    async fn schedule(&self, attempt: &ScheduledAttempt) -> Result<(), StoreError>;
    /// Every attempt due in the minute starting at `minute`.
    async fn due_in_minute(
        &self,
        minute: DateTime<Utc>,
    ) -> Result<Vec<ScheduledAttempt>, StoreError>;
    /// The last minute the scheduler has handed to the queue, if any.
    async fn scheduled_through(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Move that mark from `seen` to `minute`; `false` if another scheduler moved it.
    async fn mark_scheduled_through(
        &self,
        seen: Option<DateTime<Utc>>,
        minute: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}
