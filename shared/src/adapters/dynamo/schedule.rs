//! The due list on DynamoDB: attempts by due minute, over a few partitions per
//! minute, and the scheduler's mark.

use super::items::schedule::{ScheduledItem, minute_key};
use super::{DynamoStore, backend, decode, mapping, s, table_keys};
use crate::domain::{DeliveryKey, ScheduledAttempt};
use crate::ports::{Schedule, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl Schedule for DynamoStore {
    async fn schedule(&self, attempt: &ScheduledAttempt) -> StoreResult<()> {
        let key = DeliveryKey::from_id(attempt.job.delivery_id)
            .ok_or_else(|| StoreError::Backend("scheduled attempt of an unknown id".into()))?;
        // Read once, then left for TTL to remove: no delete is ever paid for.
        let expires_at = (attempt.at + chrono::Duration::days(2)).timestamp();
        let item =
            serde_dynamo::to_item(ScheduledItem::new(attempt, key, expires_at)).map_err(mapping)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn due_in_minute(&self, minute: DateTime<Utc>) -> StoreResult<Vec<ScheduledAttempt>> {
        let minute = minute_key(minute);
        let mut due = Vec::new();
        for shard in 0..table_keys::DUE_SHARDS {
            let request = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(table_keys::due_pk(&minute, shard)));
            for item in self.query_all(request).await? {
                due.push(decode::<ScheduledItem, ScheduledAttempt>(item)?);
            }
        }
        Ok(due)
    }

    async fn scheduled_through(&self) -> StoreResult<Option<DateTime<Utc>>> {
        Ok(self
            .get(
                table_keys::SCHEDULER_PK.to_owned(),
                table_keys::SCHEDULER_SK,
                true,
            )
            .await?
            .and_then(|item| {
                item.get("through")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
            })
            .and_then(DateTime::from_timestamp_millis))
    }

    async fn mark_scheduled_through(
        &self,
        seen: Option<DateTime<Utc>>,
        minute: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.swap_time(
            table_keys::SCHEDULER_PK.to_owned(),
            table_keys::SCHEDULER_SK,
            "through",
            seen,
            minute,
        )
        .await
    }
}
