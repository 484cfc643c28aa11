//! API keys on DynamoDB: one item each, found by the key's hash, listed per
//! organisation through `gsi1`.

use super::items::keys::ApiKeyItem;
use super::{
    DynamoStore, applied, backend, decode, is_conditional_failure, mapping, n, s, schema,
    table_keys,
};
use crate::domain::OrgSlug;
use crate::domain::{ApiKey, KeyHash};
use crate::ports::{KeyStore, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl KeyStore for DynamoStore {
    async fn insert_key(&self, key: &ApiKey) -> StoreResult<()> {
        self.put_new(serde_dynamo::to_item(ApiKeyItem::from(key)).map_err(mapping)?)
            .await
    }

    /// Eventually consistent: a fresh key may take a moment to work, a cheaper read on
    /// every request is worth it. Revocation is immediate for practical purposes.
    async fn find_key(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>> {
        self.get(table_keys::api_key_pk(hash), table_keys::API_KEY_SK, false)
            .await?
            .map(decode::<ApiKeyItem, ApiKey>)
            .transpose()
    }

    async fn delete_key(&self, hash: &KeyHash) -> StoreResult<bool> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(table_keys::api_key_pk(hash)))
            .key("sk", s(table_keys::API_KEY_SK))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        applied(result)
    }

    async fn list_keys(&self, org: &OrgSlug) -> StoreResult<Vec<ApiKey>> {
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(schema::GSI1)
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", s(table_keys::org_api_keys_gsi1pk(org)));
        let items = self.query_all(request).await?;
        let mut listed: Vec<ApiKey> = items
            .into_iter()
            .map(decode::<ApiKeyItem, ApiKey>)
            .collect::<Result<_, _>>()?;
        // `last_used_at`, `expires_at` and `parent_id` are not in the index (see
        // `ApiKeyItem`): read from each item. An operator's command or a revocation, over
        // a handful of keys, never a request's path.
        for key in &mut listed {
            if let Some(item) = self.find_key(&key.hash).await? {
                *key = item;
            }
        }
        Ok(listed)
    }

    async fn record_key_use(&self, hash: &KeyHash, at: DateTime<Utc>) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(table_keys::api_key_pk(hash)))
            .key("sk", s(table_keys::API_KEY_SK))
            .update_expression("SET last_used_at = :at")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":at", n(at.timestamp_millis()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if is_conditional_failure(&err) => Ok(()),
            Err(err) => Err(backend(err)),
        }
    }
}
