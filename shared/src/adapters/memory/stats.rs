//! Attempts per endpoint and hour in the embedded store.

use super::MemoryStore;
use crate::domain::EndpointNumber;
use crate::domain::OrgSlug;
use crate::domain::now;
use crate::domain::stats::{HourlyCount, OrgHourCounts, STATS_KEPT_DAYS, hour_of};
use crate::ports::{AttemptStats, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl AttemptStats for MemoryStore {
    async fn add_attempt_counts(&self, counts: &[OrgHourCounts]) -> StoreResult<()> {
        let mut state = self.state_mut();
        // Kept as long as in DynamoDB, so a long-running local store does not grow.
        let kept_from = hour_of(now()) - chrono::Duration::days(STATS_KEPT_DAYS);
        state
            .attempt_counts
            .retain(|(_, hour), _| *hour >= kept_from);
        for c in counts {
            let hour = state
                .attempt_counts
                .entry((c.org.clone(), c.hour))
                .or_default();
            for (number, add) in &c.endpoints {
                let counts = hour.entry(*number).or_default();
                counts.succeeded += add.succeeded;
                counts.failed += add.failed;
            }
        }
        Ok(())
    }

    async fn attempt_counts(
        &self,
        org: &OrgSlug,
        number: EndpointNumber,
        first: DateTime<Utc>,
        last: DateTime<Utc>,
    ) -> StoreResult<Vec<HourlyCount>> {
        Ok(self
            .state()
            .attempt_counts
            .range((org.to_owned(), first)..=(org.to_owned(), last))
            .filter_map(|((_, hour), endpoints)| {
                endpoints.get(&number).map(|c| HourlyCount {
                    hour: *hour,
                    succeeded: c.succeeded,
                    failed: c.failed,
                })
            })
            .collect())
    }
}
