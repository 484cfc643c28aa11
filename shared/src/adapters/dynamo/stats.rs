//! Attempts per organisation, hour and endpoint on DynamoDB (`STATS#`): one item per
//! organisation and hour.

use super::items::stats::{stats_expiry, stats_of};
use super::{DynamoStore, backend, n, s, table_keys};
use crate::domain::EndpointNumber;
use crate::domain::OrgSlug;
use crate::domain::stats::{HourlyCount, OrgHourCounts};
use crate::ports::{AttemptStats, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::future::try_join_all;

#[async_trait]
impl AttemptStats for DynamoStore {
    async fn add_attempt_counts(&self, counts: &[OrgHourCounts]) -> StoreResult<()> {
        try_join_all(counts.iter().map(|c| {
            let mut adds = Vec::new();
            let mut request = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(table_keys::stats_pk(&c.org)))
                .key("sk", s(table_keys::hour_sk(c.hour)))
                .expression_attribute_values(":h", n(c.hour.timestamp_millis()))
                .expression_attribute_values(":x", n(stats_expiry(c.hour)));
            for (i, (number, counts)) in c.endpoints.iter().enumerate() {
                let (succeeded, failed) = table_keys::stats_attributes(*number);
                // Zeros are left out: every attribute adds to the item's size.
                for (kind, name, value) in [
                    ("s", succeeded, counts.succeeded),
                    ("f", failed, counts.failed),
                ] {
                    if value > 0 {
                        adds.push(format!("#{kind}{i} :{kind}{i}"));
                        request = request
                            .expression_attribute_names(format!("#{kind}{i}"), name)
                            .expression_attribute_values(format!(":{kind}{i}"), n(value));
                    }
                }
            }
            request
                .update_expression(format!(
                    "ADD {} SET h = :h, expires_at = :x",
                    adds.join(", ")
                ))
                .send()
        }))
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn attempt_counts(
        &self,
        org: &OrgSlug,
        number: EndpointNumber,
        first: DateTime<Utc>,
        last: DateTime<Utc>,
    ) -> StoreResult<Vec<HourlyCount>> {
        let (succeeded, failed) = table_keys::stats_attributes(number);
        let items = self
            .query_all(
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND sk BETWEEN :first AND :last")
                    .expression_attribute_values(":pk", s(table_keys::stats_pk(org)))
                    .expression_attribute_values(":first", s(table_keys::hour_sk(first)))
                    .expression_attribute_values(":last", s(table_keys::hour_sk(last)))
                    // Only this endpoint's counters come back (the read is priced on
                    // the whole items all the same).
                    .projection_expression("pk, h, #s, #f")
                    .expression_attribute_names("#s", succeeded)
                    .expression_attribute_names("#f", failed),
            )
            .await?;
        let mut hours = Vec::new();
        for item in &items {
            let stored = stats_of(item).map_err(StoreError::Backend)?;
            if let Some(c) = stored.endpoints.get(&number) {
                hours.push(HourlyCount {
                    hour: stored.hour,
                    succeeded: c.succeeded,
                    failed: c.failed,
                });
            }
        }
        Ok(hours)
    }
}
