//! How recovery jobs' records are stored.

use super::error::StoreResult;
use crate::domain::OrgSlug;
use crate::domain::recovery::Recovery;
use async_trait::async_trait;
use uuid::Uuid;

/// Recovery jobs' records: what the recovery route started and how far it got.
#[async_trait]
pub trait RecoveryStore: Send + Sync {
    /// The id of endpoint `endpoint_id`'s latest recovery; `None` if it has none kept.
    async fn latest_recovery_id(&self, endpoint_id: Uuid) -> StoreResult<Option<Uuid>>;
    /// Store a new recovery as its endpoint's latest, if the endpoint's latest is still
    /// `replacing`; `AlreadyExists` (nothing written) if another start replaced it
    /// first.
    async fn insert_recovery(
        &self,
        recovery: &Recovery,
        replacing: Option<Uuid>,
    ) -> StoreResult<()>;
    /// `None` for an unknown id or another organisation's.
    async fn get_recovery(&self, org: &OrgSlug, id: Uuid) -> StoreResult<Option<Recovery>>;
    /// Store `next` if the stored recovery is still at `seen`'s position and running;
    /// `false` (nothing written) if another handling moved it meanwhile.
    async fn advance_recovery(&self, seen: &Recovery, next: &Recovery) -> StoreResult<bool>;
}
