//! Recovery jobs' records on DynamoDB (`RECOVERY#`).

use super::items::recoveries::RecoveryItem;
use super::{DynamoStore, Item, applied, decode, mapping, n, s, table_keys};
use crate::domain::OrgSlug;
use crate::domain::recovery::Recovery;
use crate::ports::{RecoveryStore, StoreResult};
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
impl RecoveryStore for DynamoStore {
    async fn insert_recovery(&self, recovery: &Recovery) -> StoreResult<()> {
        let item: Item = serde_dynamo::to_item(RecoveryItem::new(
            recovery,
            self.retention.expires_at(recovery.created_at),
        ))
        .map_err(mapping)?;
        self.put_new(item).await
    }

    async fn get_recovery(&self, org: &OrgSlug, id: Uuid) -> StoreResult<Option<Recovery>> {
        Ok(self
            // Consistent: the job advances the record conditionally on what it read.
            .get(table_keys::recovery_pk(id), table_keys::RECOVERY_SK, true)
            .await?
            .map(decode::<RecoveryItem, Recovery>)
            .transpose()?
            .filter(|r| r.org == *org))
    }

    async fn advance_recovery(&self, seen: &Recovery, next: &Recovery) -> StoreResult<bool> {
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
        applied(request.send().await)
    }
}
