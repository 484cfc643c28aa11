//! Endpoints in the embedded store.

use super::MemoryStore;
use crate::domain::EndpointNumber;
use crate::domain::OrgSlug;
use crate::domain::{Endpoint, EndpointChanges, SigningSecret};
use crate::ports::{EndpointStore, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

fn org_range(org: &OrgSlug) -> std::ops::RangeInclusive<(OrgSlug, Uuid)> {
    (org.to_owned(), Uuid::nil())..=(org.to_owned(), Uuid::max())
}

#[async_trait]
impl EndpointStore for MemoryStore {
    async fn allocate_endpoint_number(&self) -> StoreResult<EndpointNumber> {
        let mut state = self.state_mut();
        state.endpoint_numbers = state
            .endpoint_numbers
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("endpoint numbers exhausted".into()))?;
        Ok(EndpointNumber(state.endpoint_numbers))
    }

    async fn insert_endpoint(&self, endpoint: &Endpoint, limit: usize) -> StoreResult<()> {
        let mut state = self.state_mut();
        if state.endpoints.range(org_range(&endpoint.org)).count() >= limit {
            return Err(StoreError::EndpointLimitReached { limit });
        }
        let key = (endpoint.org.clone(), endpoint.id);
        if state.endpoints.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        state.endpoints.insert(key, endpoint.clone());
        Ok(())
    }

    async fn list_endpoints(&self, org: &OrgSlug) -> StoreResult<Vec<Endpoint>> {
        Ok(self
            .state()
            .endpoints
            .range(org_range(org))
            .rev()
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn get_endpoint(&self, org: &OrgSlug, id: Uuid) -> StoreResult<Option<Endpoint>> {
        Ok(self.state().endpoints.get(&(org.to_owned(), id)).cloned())
    }

    async fn peek_endpoint(&self, org: &OrgSlug, id: Uuid) -> StoreResult<Option<Endpoint>> {
        self.get_endpoint(org, id).await
    }

    async fn update_endpoint(
        &self,
        org: &OrgSlug,
        id: Uuid,
        changes: &EndpointChanges,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Endpoint>> {
        let mut state = self.state_mut();
        Ok(state.endpoints.get_mut(&(org.to_owned(), id)).map(|e| {
            changes.apply(e, now);
            e.clone()
        }))
    }

    async fn replace_secret(
        &self,
        org: &OrgSlug,
        id: Uuid,
        secret: &SigningSecret,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut state = self.state_mut();
        Ok(match state.endpoints.get_mut(&(org.to_owned(), id)) {
            Some(e) => {
                e.secret = secret.clone();
                e.updated_at = now;
                true
            }
            None => false,
        })
    }

    async fn delete_endpoint(&self, org: &OrgSlug, id: Uuid) -> StoreResult<bool> {
        Ok(self
            .state_mut()
            .endpoints
            .remove(&(org.to_owned(), id))
            .is_some())
    }
}
