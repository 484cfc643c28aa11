//! Endpoints on DynamoDB: one item each in the organisation's partition, and the
//! organisation's item counting them.

use super::expr::UpdateExpr;
use super::items::endpoints::EndpointItem;
use super::table_keys;
use super::{DynamoStore, applied, backend, decode, is_conditional_failure, mapping, n, s};
use crate::domain::EndpointNumber;
use crate::domain::OrgSlug;
use crate::domain::time::format as ts;
use crate::domain::{Endpoint, EndpointChanges, PausedBy, SigningSecret};
use crate::ports::{EndpointStore, StoreError, StoreResult};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, ReturnValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[async_trait]
impl EndpointStore for DynamoStore {
    async fn allocate_endpoint_number(&self) -> StoreResult<EndpointNumber> {
        // One counter for the whole table; endpoints are created rarely.
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(table_keys::SERIAL_PK))
            .key("sk", s(table_keys::ENDPOINT_SERIAL_SK))
            .update_expression("ADD #last :one")
            .expression_attribute_names("#last", "last")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(backend)?;
        out.attributes
            .and_then(|a| {
                a.get("last")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
            })
            .map(EndpointNumber)
            .ok_or_else(|| StoreError::Backend("endpoint numbers exhausted".into()))
    }

    async fn insert_endpoint(&self, endpoint: &Endpoint, limit: usize) -> StoreResult<()> {
        let item = serde_dynamo::to_item(EndpointItem::from(endpoint)).map_err(mapping)?;
        // The per-org counter and the endpoint are written together, so the limit holds
        // under concurrent creates without counting the org's endpoints.
        let count = Update::builder()
            .table_name(&self.table)
            .key("pk", s(table_keys::org_pk(&endpoint.org)))
            .key("sk", s(table_keys::ORG_SK))
            .update_expression("SET endpoint_count = if_not_exists(endpoint_count, :zero) + :one")
            .condition_expression("attribute_not_exists(endpoint_count) OR endpoint_count < :limit")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let items = vec![
            TransactWriteItem::builder().update(count).build(),
            self.put_new_in_transaction(item)?,
        ];
        match self.transact(items, None).await?.as_deref() {
            None => Ok(()),
            Some([true, ..]) => Err(StoreError::EndpointLimitReached { limit }),
            Some(_) => Err(StoreError::AlreadyExists),
        }
    }

    async fn list_endpoints(&self, org: &OrgSlug) -> StoreResult<Vec<Endpoint>> {
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(table_keys::org_pk(org)))
            .expression_attribute_values(":prefix", s(table_keys::ENDPOINT_SK_PREFIX))
            .scan_index_forward(false);
        let items = self.query_all(request).await?;
        items
            .into_iter()
            .map(decode::<EndpointItem, Endpoint>)
            .collect()
    }

    async fn get_endpoint(&self, org: &OrgSlug, id: Uuid) -> StoreResult<Option<Endpoint>> {
        self.get(table_keys::org_pk(org), &table_keys::endpoint_sk(id), true)
            .await?
            .map(decode::<EndpointItem, Endpoint>)
            .transpose()
    }

    async fn peek_endpoint(&self, org: &OrgSlug, id: Uuid) -> StoreResult<Option<Endpoint>> {
        self.get(table_keys::org_pk(org), &table_keys::endpoint_sk(id), false)
            .await?
            .map(decode::<EndpointItem, Endpoint>)
            .transpose()
    }

    async fn update_endpoint(
        &self,
        org: &OrgSlug,
        id: Uuid,
        changes: &EndpointChanges,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Endpoint>> {
        if changes.is_empty() {
            return self.get_endpoint(org, id).await;
        }
        let mut expr = UpdateExpr::new().set("updated_at", s(ts(&now)));
        if let Some(url) = &changes.url {
            expr = expr.set("url", s(url));
        }
        if let Some(description) = &changes.description {
            expr = expr.set("description", s(description));
        }
        if let Some(types) = &changes.event_types {
            expr = expr.set(
                "event_types",
                AttributeValue::L(types.iter().map(s).collect()),
            );
        }
        if let Some(active) = changes.is_active {
            expr = expr.set("is_active", AttributeValue::Bool(active));
            // As `EndpointChanges::apply`: pausing a paused endpoint keeps what paused it.
            expr = if active {
                expr.remove("paused_by")
            } else {
                expr.set_if_absent("paused_by", s(PausedBy::Manual.as_str()))
            };
        }
        if changes.resets_failures() {
            expr = expr.set("consecutive_failures", n(0));
        }
        let request = self
            .endpoint_update(org, id)
            .condition_expression("attribute_exists(pk)")
            .return_values(ReturnValue::AllNew);
        let result = expr.update_item(request).send().await;
        match result {
            Ok(out) => out
                .attributes
                .map(decode::<EndpointItem, Endpoint>)
                .transpose(),
            Err(err) if is_conditional_failure(&err) => Ok(None),
            Err(err) => Err(backend(err)),
        }
    }

    async fn replace_secret(
        &self,
        org: &OrgSlug,
        id: Uuid,
        secret: &SigningSecret,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = self
            .endpoint_update(org, id)
            .update_expression("SET secret = :secret, updated_at = :updated_at")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":secret", s(secret.expose()))
            .expression_attribute_values(":updated_at", s(ts(&now)))
            .send()
            .await;
        applied(result)
    }

    async fn delete_endpoint(&self, org: &OrgSlug, id: Uuid) -> StoreResult<bool> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(table_keys::org_pk(org)))
            .key("sk", s(table_keys::endpoint_sk(id)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let count = Update::builder()
            .table_name(&self.table)
            .key("pk", s(table_keys::org_pk(org)))
            .key("sk", s(table_keys::ORG_SK))
            .update_expression("SET endpoint_count = endpoint_count - :one")
            .condition_expression("endpoint_count > :zero")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        match self.transact(items, None).await?.as_deref() {
            None => Ok(true),
            Some([true, ..]) => Ok(false),
            Some(_) => Err(StoreError::Backend(
                "endpoint_count is out of step with the endpoints".into(),
            )),
        }
    }
}
