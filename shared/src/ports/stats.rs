//! How attempts are counted per endpoint and hour.

use super::error::StoreResult;
use crate::domain::EndpointNumber;
use crate::domain::OrgSlug;
use crate::domain::stats::{HourlyCount, OrgHourCounts};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Attempts per endpoint and UTC hour (the console's chart).
#[async_trait]
pub trait AttemptStats: Send + Sync {
    /// Add each organisation's and hour's counts (one write each).
    async fn add_attempt_counts(&self, counts: &[OrgHourCounts]) -> StoreResult<()>;
    /// Endpoint `number`'s (of `org`) counts for the hours from `first` to `last`,
    /// oldest first; an hour without attempts is absent.
    async fn attempt_counts(
        &self,
        org: &OrgSlug,
        number: EndpointNumber,
        first: DateTime<Utc>,
        last: DateTime<Utc>,
    ) -> StoreResult<Vec<HourlyCount>>;
}
