//! How the circuit breaker's counter is kept.

use super::error::StoreResult;
use crate::domain::OrgSlug;
use crate::domain::Pause;
use async_trait::async_trait;
use uuid::Uuid;

/// The circuit breaker's counter on the endpoint, changed atomically.
#[async_trait]
pub trait EndpointHealth: Send + Sync {
    /// Add `failures` to the count; the new count, or `None` if the endpoint is gone.
    async fn record_failures(
        &self,
        org: &OrgSlug,
        id: Uuid,
        failures: u32,
    ) -> StoreResult<Option<u32>>;
    /// Reset the count to zero, judged on the stored count as it is now (a read, then a
    /// write only when it is not zero already); the count it found (0 if the endpoint is
    /// gone).
    async fn record_success(&self, org: &OrgSlug, id: Uuid) -> StoreResult<u32>;
    /// Apply `pause` (`is_active: false`, paused by `pause.by`) if the endpoint is active
    /// and its count reached `pause.min_failures`, if any. `true` if this call paused it.
    async fn pause_endpoint(&self, org: &OrgSlug, id: Uuid, pause: Pause) -> StoreResult<bool>;
}
