//! What the console adds to the table: attempts per organisation, hour and endpoint
//! (`STATS#`) and recovery jobs' records (`RECOVERY#`).

use super::items::{RecoveryItem, keys, stats_expiry, stats_of};
use super::{DynamoStore, Item, backend, decode, is_conditional_failure, mapping, n, s};
use crate::domain::recovery::Recovery;
use crate::domain::stats::{HourlyCount, OrgHourCounts};
use crate::ports::{AttemptStats, RecoveryStore, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::future::try_join_all;
use uuid::Uuid;

#[async_trait]
impl AttemptStats for DynamoStore {
    async fn add_attempt_counts(&self, counts: &[OrgHourCounts]) -> Result<(), StoreError> {
        try_join_all(counts.iter().map(|c| {
            let mut adds = Vec::new();
            let mut request = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(keys::stats_pk(&c.org)))
                .key("sk", s(keys::hour_sk(c.hour)))
                .expression_attribute_values(":h", n(c.hour.timestamp_millis()))
                .expression_attribute_values(":x", n(stats_expiry(c.hour)));
            for (i, (number, counts)) in c.endpoints.iter().enumerate() {
                let (succeeded, failed) = keys::stats_attributes(*number);
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
        org: &str,
        number: u32,
        first: DateTime<Utc>,
        last: DateTime<Utc>,
    ) -> Result<Vec<HourlyCount>, StoreError> {
        let (succeeded, failed) = keys::stats_attributes(number);
        let items = self
            .query_all(
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND sk BETWEEN :first AND :last")
                    .expression_attribute_values(":pk", s(keys::stats_pk(org)))
                    .expression_attribute_values(":first", s(keys::hour_sk(first)))
                    .expression_attribute_values(":last", s(keys::hour_sk(last)))
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

#[async_trait]
impl RecoveryStore for DynamoStore {
    async fn insert_recovery(&self, recovery: &Recovery) -> Result<(), StoreError> {
        let item: Item = serde_dynamo::to_item(RecoveryItem::new(
            recovery,
            self.retention.expires_at(recovery.created_at),
        ))
        .map_err(mapping)?;
        self.put_new(item).await
    }

    async fn get_recovery(&self, org: &str, id: Uuid) -> Result<Option<Recovery>, StoreError> {
        Ok(self
            // Consistent: the job advances the record conditionally on what it read.
            .get(keys::recovery_pk(id), keys::RECOVERY_SK, true)
            .await?
            .map(decode::<RecoveryItem, Recovery>)
            .transpose()?
            .filter(|r| r.org == org))
    }

    async fn advance_recovery(&self, seen: &Recovery, next: &Recovery) -> Result<bool, StoreError> {
        let item: Item = serde_dynamo::to_item(RecoveryItem::new(
            next,
            self.retention.expires_at(next.created_at),
        ))
        .map_err(mapping)?;
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .expression_attribute_values(":running", s("running"));
        request = match seen.position {
            Some(p) => request
                .condition_expression("st = :running AND pt = :pt AND ps = :ps")
                .expression_attribute_values(":pt", n(p.created_at.timestamp_millis()))
                .expression_attribute_values(":ps", n(p.seq)),
            None => request.condition_expression("st = :running AND attribute_not_exists(ps)"),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err) if is_conditional_failure(&err) => Ok(false),
            Err(err) => Err(backend(err)),
        }
    }
}
