//! The narrow traits the domain talks to storage through. Each entry point depends only
//! on the ports it uses; every adapter passes the same contract tests (`tests/`).

use crate::domain::{ApiKey, Endpoint, EndpointChanges, KeyHash, SigningSecret};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use thiserror::Error;
use uuid::Uuid;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The organisation already has `limit` endpoints.
    #[error("the organisation already has the maximum of {limit} endpoints")]
    EndpointLimitReached { limit: usize },
    /// A conditional create found the item already there.
    #[error("the item already exists")]
    AlreadyExists,
    /// The backend failed; the text is for logs only and never reaches a client.
    #[error("storage backend error: {0}")]
    Backend(String),
}

/// Endpoints of an organisation. Every call is scoped by `org`: an id of another
/// organisation's endpoint behaves exactly like an unknown id.
#[async_trait]
pub trait EndpointStore: Send + Sync {
    /// Store a new endpoint unless the organisation already has `limit` of them.
    async fn insert_endpoint(&self, endpoint: &Endpoint, limit: usize) -> Result<(), StoreError>;
    /// Newest first.
    async fn list_endpoints(&self, org: &str) -> Result<Vec<Endpoint>, StoreError>;
    async fn get_endpoint(&self, org: &str, id: Uuid) -> Result<Option<Endpoint>, StoreError>;
    /// Apply `changes` atomically; `None` if there is no such endpoint.
    async fn update_endpoint(
        &self,
        org: &str,
        id: Uuid,
        changes: &EndpointChanges,
        now: DateTime<Utc>,
    ) -> Result<Option<Endpoint>, StoreError>;
    /// Replace the signing secret; `false` if there is no such endpoint.
    async fn replace_secret(
        &self,
        org: &str,
        id: Uuid,
        secret: &SigningSecret,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// `false` if there was no such endpoint.
    async fn delete_endpoint(&self, org: &str, id: Uuid) -> Result<bool, StoreError>;
}

/// API keys, found by the hash of the key.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// `AlreadyExists` if a key with the same hash is stored.
    async fn insert_key(&self, key: &ApiKey) -> Result<(), StoreError>;
    async fn find_key(&self, hash: &KeyHash) -> Result<Option<ApiKey>, StoreError>;
    /// `false` if no such key was stored.
    async fn delete_key(&self, hash: &KeyHash) -> Result<bool, StoreError>;
    /// Oldest first.
    async fn list_keys(&self, org: &str) -> Result<Vec<ApiKey>, StoreError>;
}
