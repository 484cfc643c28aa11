//! The embedded store: the local server's backend, held in process memory.
//!
//! It keeps the same rules as the DynamoDB adapter (limits, ordering, conditional
//! creates); the contract tests in `tests/` run against both.

use crate::domain::{ApiKey, Endpoint, EndpointChanges, KeyHash, SigningSecret};
use crate::ports::{EndpointStore, KeyStore, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use uuid::Uuid;

#[derive(Default)]
struct State {
    /// (org, endpoint id) -> endpoint; ids are v7, so the map's order is creation order.
    endpoints: BTreeMap<(String, Uuid), Endpoint>,
    keys: BTreeMap<KeyHash, ApiKey>,
}

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A poisoned lock only means another request panicked mid-way; every mutation below
    /// is a single map operation, so the data is still consistent and we carry on.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn org_range(org: &str) -> std::ops::RangeInclusive<(String, Uuid)> {
    (org.to_owned(), Uuid::nil())..=(org.to_owned(), Uuid::max())
}

#[async_trait]
impl EndpointStore for MemoryStore {
    async fn insert_endpoint(&self, endpoint: &Endpoint, limit: usize) -> Result<(), StoreError> {
        let mut state = self.state();
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

    async fn list_endpoints(&self, org: &str) -> Result<Vec<Endpoint>, StoreError> {
        Ok(self
            .state()
            .endpoints
            .range(org_range(org))
            .rev()
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn get_endpoint(&self, org: &str, id: Uuid) -> Result<Option<Endpoint>, StoreError> {
        Ok(self.state().endpoints.get(&(org.to_owned(), id)).cloned())
    }

    async fn update_endpoint(
        &self,
        org: &str,
        id: Uuid,
        changes: &EndpointChanges,
        now: DateTime<Utc>,
    ) -> Result<Option<Endpoint>, StoreError> {
        let mut state = self.state();
        Ok(state.endpoints.get_mut(&(org.to_owned(), id)).map(|e| {
            changes.apply(e, now);
            e.clone()
        }))
    }

    async fn replace_secret(
        &self,
        org: &str,
        id: Uuid,
        secret: &SigningSecret,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        Ok(match state.endpoints.get_mut(&(org.to_owned(), id)) {
            Some(e) => {
                e.secret = secret.clone();
                e.updated_at = now;
                true
            }
            None => false,
        })
    }

    async fn delete_endpoint(&self, org: &str, id: Uuid) -> Result<bool, StoreError> {
        Ok(self
            .state()
            .endpoints
            .remove(&(org.to_owned(), id))
            .is_some())
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn insert_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.keys.contains_key(&key.hash) {
            return Err(StoreError::AlreadyExists);
        }
        state.keys.insert(key.hash.clone(), key.clone());
        Ok(())
    }

    async fn find_key(&self, hash: &KeyHash) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.state().keys.get(hash).cloned())
    }

    async fn delete_key(&self, hash: &KeyHash) -> Result<bool, StoreError> {
        Ok(self.state().keys.remove(hash).is_some())
    }

    async fn list_keys(&self, org: &str) -> Result<Vec<ApiKey>, StoreError> {
        let mut keys: Vec<ApiKey> = self
            .state()
            .keys
            .values()
            .filter(|k| k.org == org)
            .cloned()
            .collect();
        keys.sort_by_key(|k| k.id);
        Ok(keys)
    }
}
