//! API keys in the embedded store.

use super::MemoryStore;
use crate::domain::OrgSlug;
use crate::domain::{ApiKey, KeyHash};
use crate::ports::{KeyStore, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl KeyStore for MemoryStore {
    async fn insert_key(&self, key: &ApiKey) -> StoreResult<()> {
        let mut state = self.state_mut();
        if state.keys.contains_key(&key.hash) {
            return Err(StoreError::AlreadyExists);
        }
        state.keys.insert(key.hash.clone(), key.clone());
        Ok(())
    }

    async fn find_key(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>> {
        Ok(self.state().keys.get(hash).cloned())
    }

    async fn delete_key(&self, hash: &KeyHash) -> StoreResult<bool> {
        Ok(self.state_mut().keys.remove(hash).is_some())
    }

    async fn list_keys(&self, org: &OrgSlug) -> StoreResult<Vec<ApiKey>> {
        let mut keys: Vec<ApiKey> = self
            .state()
            .keys
            .values()
            .filter(|k| k.org == *org)
            .cloned()
            .collect();
        keys.sort_by_key(|k| k.id);
        Ok(keys)
    }

    async fn record_key_use(&self, hash: &KeyHash, at: DateTime<Utc>) -> StoreResult<()> {
        if let Some(k) = self.state_mut().keys.get_mut(hash) {
            k.last_used_at = Some(at);
        }
        Ok(())
    }
}
