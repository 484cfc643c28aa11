//! Recovery jobs' records in the embedded store.

use super::MemoryStore;
use crate::domain::OrgSlug;
use crate::domain::recovery::{Recovery, RecoveryStatus};
use crate::ports::{RecoveryStore, StoreResult};
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
impl RecoveryStore for MemoryStore {
    async fn insert_recovery(&self, recovery: &Recovery) -> StoreResult<()> {
        self.state_mut()
            .recoveries
            .insert(recovery.id, recovery.clone());
        Ok(())
    }

    async fn get_recovery(&self, org: &OrgSlug, id: Uuid) -> StoreResult<Option<Recovery>> {
        Ok(self
            .state()
            .recoveries
            .get(&id)
            .filter(|r| r.org == *org)
            .cloned())
    }

    async fn advance_recovery(&self, seen: &Recovery, next: &Recovery) -> StoreResult<bool> {
        let mut state = self.state_mut();
        match state.recoveries.get_mut(&seen.id) {
            Some(stored)
                if stored.position == seen.position && stored.status == RecoveryStatus::Running =>
            {
                *stored = next.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
