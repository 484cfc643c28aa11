//! DynamoDB adapter: one table, keys laid out as in `docs/DESIGN.md` ("Table design").
//!
//! Items are mapped with `serde_dynamo`; every conditional write maps its failure to a
//! domain error instead of a generic backend error.

mod console;
mod deliveries;
mod expr;
pub(crate) mod items;
pub mod schema;

use crate::domain::time::format as ts;
use crate::domain::{
    ApiKey, Endpoint, EndpointChanges, KeyHash, PausedBy, Retention, SigningSecret,
};
use crate::ports::{EndpointStore, KeyStore, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValue, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};
use expr::UpdateExpr;
use items::{ApiKeyItem, EndpointItem, keys};
use std::collections::HashMap;
use uuid::Uuid;

type Item = HashMap<String, AttributeValue>;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// How long events, deliveries and attempts are kept (their `expires_at`), and
    /// whether one still is.
    retention: Retention,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            retention: Retention::default(),
        }
    }

    pub fn with_retention_days(self, days: u32) -> Self {
        self.with_retention(Retention::days(days))
    }

    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// A client from the SDK's standard chain (`AWS_REGION`, `AWS_ENDPOINT_URL`, ...).
    pub async fn from_env(table: impl Into<String>) -> Self {
        let config = aws_config::load_from_env().await;
        Self::new(Client::new(&config), table)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `TransactWriteItems`: `Ok(None)` when it committed, `Ok(Some(failed))` when
    /// conditions cancelled it (`failed[i]`: item `i`'s condition failed).
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<Vec<bool>>, StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(None),
            Err(err) => match failed_conditions(&err) {
                Some(failed) if failed.contains(&true) => Ok(Some(failed)),
                _ => Err(backend(err)),
            },
        }
    }

    /// `GetItem` by key.
    async fn get(
        &self,
        pk: String,
        sk: &str,
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(backend)?;
        Ok(out.item)
    }

    /// `PutItem` that must create: `AlreadyExists` if an item with that key is stored.
    async fn put_new(&self, item: Item) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if is_conditional_failure(&err) => Err(StoreError::AlreadyExists),
            Err(err) => Err(backend(err)),
        }
    }

    /// Atomically add `by` to a number of an existing item: the new value, or `None` if
    /// the item does not exist.
    async fn increment(
        &self,
        pk: String,
        sk: &str,
        attribute: &str,
        by: u32,
    ) -> Result<Option<u64>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression("ADD #counter :by")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#counter", attribute)
            .expression_attribute_values(":by", n(by))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => out
                .attributes
                .and_then(|a| {
                    a.get(attribute)
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse().ok())
                })
                .map(Some)
                .ok_or_else(|| StoreError::Backend(format!("ADD {attribute} returned no number"))),
            Err(err) if is_conditional_failure(&err) => Ok(None),
            Err(err) => Err(backend(err)),
        }
    }

    /// All pages of a query, in the order DynamoDB returns them.
    async fn query_all(
        &self,
        request: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        Self::each_page(request, |page| {
            out.extend(page.items.unwrap_or_default());
        })
        .await?;
        Ok(out)
    }

    /// Send a query page after page, handing each to `visit`, until the last.
    async fn each_page(
        request: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        mut visit: impl FnMut(aws_sdk_dynamodb::operation::query::QueryOutput),
    ) -> Result<(), StoreError> {
        let mut start: Option<Item> = None;
        loop {
            let mut page = request
                .clone()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(backend)?;
            let next = page.last_evaluated_key.take();
            visit(page);
            match next {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(()),
            }
        }
    }
}

fn backend<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    StoreError::Backend(DisplayErrorContext(err).to_string())
}

fn mapping(err: serde_dynamo::Error) -> StoreError {
    StoreError::Backend(format!("item mapping: {err}"))
}

/// An item read back into its domain type, through its item shape `I`.
fn decode<I, T>(item: Item) -> Result<T, StoreError>
where
    I: serde::de::DeserializeOwned,
    T: TryFrom<I>,
    T::Error: std::fmt::Display,
{
    let shape: I = serde_dynamo::from_item(item).map_err(mapping)?;
    T::try_from(shape).map_err(|e| StoreError::Backend(e.to_string()))
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Which items of a cancelled transaction failed their condition.
fn failed_conditions<R>(
    err: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> Option<Vec<bool>> {
    let service = err.as_service_error()?;
    let aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
        cancelled,
    ) = service
    else {
        return None;
    };
    Some(
        cancelled
            .cancellation_reasons()
            .iter()
            .map(|r| r.code() == Some("ConditionalCheckFailed"))
            .collect(),
    )
}

fn is_conditional_failure<E, R>(err: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

#[async_trait]
impl EndpointStore for DynamoStore {
    async fn allocate_endpoint_number(&self) -> Result<u32, StoreError> {
        // One counter for the whole table; endpoints are created rarely.
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::SERIAL_PK))
            .key("sk", s(keys::ENDPOINT_SERIAL_SK))
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
            .ok_or_else(|| StoreError::Backend("endpoint numbers exhausted".into()))
    }

    async fn insert_endpoint(&self, endpoint: &Endpoint, limit: usize) -> Result<(), StoreError> {
        let item = serde_dynamo::to_item(EndpointItem::from(endpoint)).map_err(mapping)?;
        // The per-org counter and the endpoint are written together, so the limit holds
        // under concurrent creates without counting the org's endpoints.
        let count = Update::builder()
            .table_name(&self.table)
            .key("pk", s(keys::org_pk(&endpoint.org)))
            .key("sk", s(keys::ORG_SK))
            .update_expression("SET endpoint_count = if_not_exists(endpoint_count, :zero) + :one")
            .condition_expression("attribute_not_exists(endpoint_count) OR endpoint_count < :limit")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let items = vec![
            TransactWriteItem::builder().update(count).build(),
            TransactWriteItem::builder().put(put).build(),
        ];
        match self.transact(items).await?.as_deref() {
            None => Ok(()),
            Some([true, ..]) => Err(StoreError::EndpointLimitReached { limit }),
            Some(_) => Err(StoreError::AlreadyExists),
        }
    }

    async fn list_endpoints(&self, org: &str) -> Result<Vec<Endpoint>, StoreError> {
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(keys::org_pk(org)))
            .expression_attribute_values(":prefix", s(keys::ENDPOINT_SK_PREFIX))
            .scan_index_forward(false);
        let items = self.query_all(request).await?;
        items
            .into_iter()
            .map(decode::<EndpointItem, Endpoint>)
            .collect()
    }

    async fn get_endpoint(&self, org: &str, id: Uuid) -> Result<Option<Endpoint>, StoreError> {
        self.get(keys::org_pk(org), &keys::endpoint_sk(id), true)
            .await?
            .map(decode::<EndpointItem, Endpoint>)
            .transpose()
    }

    async fn peek_endpoint(&self, org: &str, id: Uuid) -> Result<Option<Endpoint>, StoreError> {
        self.get(keys::org_pk(org), &keys::endpoint_sk(id), false)
            .await?
            .map(decode::<EndpointItem, Endpoint>)
            .transpose()
    }

    async fn update_endpoint(
        &self,
        org: &str,
        id: Uuid,
        changes: &EndpointChanges,
        now: DateTime<Utc>,
    ) -> Result<Option<Endpoint>, StoreError> {
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
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::org_pk(org)))
            .key("sk", s(keys::endpoint_sk(id)))
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
        org: &str,
        id: Uuid,
        secret: &SigningSecret,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::org_pk(org)))
            .key("sk", s(keys::endpoint_sk(id)))
            .update_expression("SET secret = :secret, updated_at = :updated_at")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":secret", s(secret.expose()))
            .expression_attribute_values(":updated_at", s(ts(&now)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_conditional_failure(&err) => Ok(false),
            Err(err) => Err(backend(err)),
        }
    }

    async fn delete_endpoint(&self, org: &str, id: Uuid) -> Result<bool, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(keys::org_pk(org)))
            .key("sk", s(keys::endpoint_sk(id)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let count = Update::builder()
            .table_name(&self.table)
            .key("pk", s(keys::org_pk(org)))
            .key("sk", s(keys::ORG_SK))
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
        match self.transact(items).await?.as_deref() {
            None => Ok(true),
            Some([true, ..]) => Ok(false),
            Some(_) => Err(StoreError::Backend(
                "endpoint_count is out of step with the endpoints".into(),
            )),
        }
    }
}

#[async_trait]
impl KeyStore for DynamoStore {
    async fn insert_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.put_new(serde_dynamo::to_item(ApiKeyItem::from(key)).map_err(mapping)?)
            .await
    }

    /// Eventually consistent: a fresh key may take a moment to work, a cheaper read on
    /// every request is worth it. Revocation is immediate for practical purposes.
    async fn find_key(&self, hash: &KeyHash) -> Result<Option<ApiKey>, StoreError> {
        self.get(keys::api_key_pk(hash), keys::API_KEY_SK, false)
            .await?
            .map(decode::<ApiKeyItem, ApiKey>)
            .transpose()
    }

    async fn delete_key(&self, hash: &KeyHash) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(keys::api_key_pk(hash)))
            .key("sk", s(keys::API_KEY_SK))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_conditional_failure(&err) => Ok(false),
            Err(err) => Err(backend(err)),
        }
    }

    async fn list_keys(&self, org: &str) -> Result<Vec<ApiKey>, StoreError> {
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(schema::GSI1)
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", s(keys::org_api_keys_gsi1pk(org)));
        let items = self.query_all(request).await?;
        let mut listed: Vec<ApiKey> = items
            .into_iter()
            .map(decode::<ApiKeyItem, ApiKey>)
            .collect::<Result<_, _>>()?;
        // `last_used_at` is not in the index (see `ApiKeyItem`): read from each item. An
        // operator's command over a handful of keys, never a request's path.
        for key in &mut listed {
            if let Some(item) = self.find_key(&key.hash).await? {
                key.last_used_at = item.last_used_at;
                key.expires_at = item.expires_at;
            }
        }
        Ok(listed)
    }

    async fn record_key_use(&self, hash: &KeyHash, at: DateTime<Utc>) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::api_key_pk(hash)))
            .key("sk", s(keys::API_KEY_SK))
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
