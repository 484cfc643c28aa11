//! How endpoints are stored.

use super::error::StoreResult;
use crate::domain::OrgSlug;
use crate::domain::{Endpoint, EndpointChanges, EndpointNumber, SigningSecret};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Endpoints of an organisation. Every call is scoped by `org`: an id of another
/// organisation's endpoint behaves exactly like an unknown id.
#[async_trait]
pub trait EndpointStore: Send + Sync {
    /// A number for a new endpoint, never handed out before (see [`Endpoint::number`]).
    async fn allocate_endpoint_number(&self) -> StoreResult<EndpointNumber>;
    /// Store a new endpoint unless the organisation already has `limit` of them.
    async fn insert_endpoint(&self, endpoint: &Endpoint, limit: usize) -> StoreResult<()>;
    /// Newest first.
    async fn list_endpoints(&self, org: &OrgSlug) -> StoreResult<Vec<Endpoint>>;
    async fn get_endpoint(&self, org: &OrgSlug, id: Uuid) -> StoreResult<Option<Endpoint>>;
    /// [`EndpointStore::get_endpoint`], but it may be a moment behind the latest change
    /// (an eventually consistent read, at half the price): what the sender reads before
    /// every attempt.
    async fn peek_endpoint(&self, org: &OrgSlug, id: Uuid) -> StoreResult<Option<Endpoint>>;
    /// Apply `changes` atomically; `None` if there is no such endpoint.
    async fn update_endpoint(
        &self,
        org: &OrgSlug,
        id: Uuid,
        changes: &EndpointChanges,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Endpoint>>;
    /// Replace the signing secret; `false` if there is no such endpoint.
    async fn replace_secret(
        &self,
        org: &OrgSlug,
        id: Uuid,
        secret: &SigningSecret,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// `false` if there was no such endpoint.
    async fn delete_endpoint(&self, org: &OrgSlug, id: Uuid) -> StoreResult<bool>;
}
