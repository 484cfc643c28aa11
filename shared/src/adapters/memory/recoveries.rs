//! Recovery jobs' records in the embedded store.

use super::MemoryStore;
use crate::domain::OrgSlug;
use crate::domain::recovery::{Recovery, RecoveryStatus};
use crate::ports::{RecoveryStore, StoreError, StoreResult};
use async_trait::async_trait;
use std::collections::BTreeMap;
use uuid::Uuid;

#[async_trait]
impl RecoveryStore for MemoryStore {
    async fn latest_recovery_id(&self, endpoint_id: Uuid) -> StoreResult<Option<Uuid>> {
        Ok(latest(&self.state().recoveries, endpoint_id))
    }

    async fn insert_recovery(
        &self,
        recovery: &Recovery,
        replacing: Option<Uuid>,
    ) -> StoreResult<()> {
        let mut state = self.state_mut();
        if latest(&state.recoveries, recovery.endpoint_id) != replacing {
            return Err(StoreError::AlreadyExists);
        }
        state.recoveries.insert(recovery.id, recovery.clone());
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

/// The endpoint's latest recovery: ids are UUIDv7, so the greatest is the newest.
fn latest(recoveries: &BTreeMap<Uuid, Recovery>, endpoint_id: Uuid) -> Option<Uuid> {
    recoveries
        .values()
        .rev()
        .find(|r| r.endpoint_id == endpoint_id)
        .map(|r| r.id)
}
