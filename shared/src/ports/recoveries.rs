//! How recovery jobs' records are stored.

use super::error::StoreResult;
use crate::domain::OrgSlug;
use crate::domain::recovery::Recovery;
use async_trait::async_trait;
use uuid::Uuid;

/// Recovery jobs' records: what the recovery route started and how far it got.
#[async_trait]
pub trait RecoveryStore: Send + Sync {
    async fn insert_recovery(&self, recovery: &Recovery) -> StoreResult<()>;
    /// `None` for an unknown id or another organisation's.
    async fn get_recovery(&self, org: &OrgSlug, id: Uuid) -> StoreResult<Option<Recovery>>;
    /// Store `next` if the stored recovery is still at `seen`'s position and running;
    /// `false` (nothing written) if another handling moved it meanwhile.
    async fn advance_recovery(&self, seen: &Recovery, next: &Recovery) -> StoreResult<bool>;
}
