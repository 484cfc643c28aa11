//! The circuit breaker's counter in the embedded store.

use super::MemoryStore;
use crate::domain::OrgSlug;
use crate::domain::Pause;
use crate::ports::{EndpointHealth, StoreResult};
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
impl EndpointHealth for MemoryStore {
    async fn record_failures(
        &self,
        org: &OrgSlug,
        id: Uuid,
        failures: u32,
    ) -> StoreResult<Option<u32>> {
        Ok(self.state_mut().endpoint_mut(org, id).map(|e| {
            e.consecutive_failures = e.consecutive_failures.saturating_add(failures);
            e.consecutive_failures
        }))
    }

    async fn record_success(&self, org: &OrgSlug, id: Uuid) -> StoreResult<u32> {
        Ok(self
            .state_mut()
            .endpoint_mut(org, id)
            .map_or(0, |e| std::mem::take(&mut e.consecutive_failures)))
    }

    async fn pause_endpoint(&self, org: &OrgSlug, id: Uuid, pause: Pause) -> StoreResult<bool> {
        let mut state = self.state_mut();
        Ok(match state.endpoint_mut(org, id) {
            Some(e)
                if e.is_active
                    && pause
                        .min_failures
                        .is_none_or(|m| e.consecutive_failures >= m) =>
            {
                e.is_active = false;
                e.paused_by = Some(pause.by);
                e.updated_at = pause.at;
                true
            }
            _ => false,
        })
    }
}
