//! Recovery jobs' records on DynamoDB (`RECOVERY#`).

use super::items::recoveries::RecoveryItem;
use super::{DynamoStore, Item, applied, decode, mapping, n, s, table_keys};
use crate::domain::OrgSlug;
use crate::domain::recovery::Recovery;
use crate::ports::{RecoveryStore, StoreError, StoreResult};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use uuid::Uuid;

#[async_trait]
impl RecoveryStore for DynamoStore {
    async fn latest_recovery_id(&self, endpoint_id: Uuid) -> StoreResult<Option<Uuid>> {
        Ok(self
            // Consistent: a start replaces it conditionally on what it read.
            .get(
                table_keys::latest_recovery_pk(endpoint_id),
                table_keys::LATEST_RECOVERY_SK,
                true,
            )
            .await?
            .and_then(|item| item.get("rid")?.as_s().ok()?.parse().ok()))
    }

    async fn insert_recovery(
        &self,
        recovery: &Recovery,
        replacing: Option<Uuid>,
    ) -> StoreResult<()> {
        let expires_at = self.retention.expires_at(recovery.created_at);
        let item: Item =
            serde_dynamo::to_item(RecoveryItem::new(recovery, expires_at)).map_err(mapping)?;
        let latest = Put::builder()
            .table_name(&self.table)
            .item(
                "pk",
                s(table_keys::latest_recovery_pk(recovery.endpoint_id)),
            )
            .item("sk", s(table_keys::LATEST_RECOVERY_SK))
            .item("rid", s(recovery.id.to_string()))
            .item("expires_at", n(expires_at));
        let latest = match replacing {
            Some(seen) => latest
                .condition_expression("rid = :seen")
                .expression_attribute_values(":seen", s(seen.to_string())),
            None => latest.condition_expression("attribute_not_exists(pk)"),
        }
        .build()
        .map_err(|e| StoreError::Backend(e.to_string()))?;
        let items = vec![
            self.put_new_in_transaction(item)?,
            TransactWriteItem::builder().put(latest).build(),
        ];
        // The recovery's id is the token: a retried start that had committed commits
        // nothing more.
        match self.transact(items, Some(recovery.id.to_string())).await? {
            None => Ok(()),
            Some(_) => Err(StoreError::AlreadyExists),
        }
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
