//! How API keys are stored.

use super::error::StoreResult;
use crate::domain::OrgSlug;
use crate::domain::{ApiKey, KeyHash};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// API keys, found by the hash of the key.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// `AlreadyExists` if a key with the same hash is stored.
    async fn insert_key(&self, key: &ApiKey) -> StoreResult<()>;
    async fn find_key(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>>;
    /// `false` if no such key was stored.
    async fn delete_key(&self, hash: &KeyHash) -> StoreResult<bool>;
    /// Oldest first.
    async fn list_keys(&self, org: &OrgSlug) -> StoreResult<Vec<ApiKey>>;
    /// Record that the key was used at `at`; nothing if it is not stored (a revoked key
    /// is never written back).
    async fn record_key_use(&self, hash: &KeyHash, at: DateTime<Utc>) -> StoreResult<()>;
}
