//! DynamoDB adapter: one table, keys laid out as in `docs/DESIGN.md` ("Table design").
//!
//! One file per port, named as in `adapters/memory/`; the item shapes in `items/` (one
//! file per port too) and the key formats in `table_keys`. Items are mapped with
//! `serde_dynamo`; every conditional write maps its failure to a domain error instead
//! of a generic backend error. This file holds the requests the ports share.

mod deliveries;
mod endpoints;
mod events;
mod expr;
mod health;
pub(crate) mod items;
mod keys;
mod recoveries;
mod schedule;
pub mod schema;
mod stats;
mod table_keys;

use crate::domain::OrgSlug;
use crate::domain::Retention;
use crate::ports::{StoreError, StoreResult};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

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

    /// An `UpdateItem` on the organisation's endpoint `id`.
    fn endpoint_update(&self, org: &OrgSlug, id: uuid::Uuid) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(table_keys::org_pk(org)))
            .key("sk", s(table_keys::endpoint_sk(id)))
    }

    /// `TransactWriteItems`: `Ok(None)` when it committed, `Ok(Some(failed))` when
    /// conditions cancelled it (`failed[i]`: item `i`'s condition failed). With a
    /// `token`, the SDK's retries of a call that failed after committing commit nothing
    /// more and report success (DynamoDB keeps the token ten minutes).
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        token: Option<String>,
    ) -> StoreResult<Option<Vec<bool>>> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .set_client_request_token(token)
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
    async fn get(&self, pk: String, sk: &str, consistent: bool) -> StoreResult<Option<Item>> {
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

    /// A transaction's `Put` that must create (its condition fails if the key is stored).
    fn put_new_in_transaction(&self, item: Item) -> StoreResult<TransactWriteItem> {
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// `PutItem` that must create: `AlreadyExists` if an item with that key is stored.
    async fn put_new(&self, item: Item) -> StoreResult<()> {
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
    ) -> StoreResult<Option<u64>> {
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
    ) -> StoreResult<Vec<Item>> {
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
    ) -> StoreResult<()> {
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

    /// Compare-and-set of a time attribute: set it to `value` if it still holds `seen`
    /// (or, with `seen` absent, if it is absent: the item may be created). `false` if it
    /// did not.
    async fn swap_time(
        &self,
        pk: String,
        sk: &str,
        attribute: &str,
        seen: Option<DateTime<Utc>>,
        value: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression("SET #time = :value")
            .expression_attribute_names("#time", attribute)
            .expression_attribute_values(":value", ms(value));
        let request = match seen {
            Some(seen) => request
                .condition_expression("#time = :seen")
                .expression_attribute_values(":seen", ms(seen)),
            None => request.condition_expression("attribute_not_exists(#time)"),
        };
        applied(request.send().await)
    }

    fn expires_at(&self, from: DateTime<Utc>) -> i64 {
        self.retention.expires_at(from)
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
fn decode<I, T>(item: Item) -> StoreResult<T>
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

/// A conditional write's outcome: `true` if it was applied, `false` if its condition
/// failed.
fn applied<T, E, R>(result: Result<T, SdkError<E, R>>) -> StoreResult<bool>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(err) if is_conditional_failure(&err) => Ok(false),
        Err(err) => Err(backend(err)),
    }
}

fn is_conditional_failure<E, R>(err: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

fn ms(t: DateTime<Utc>) -> AttributeValue {
    n(t.timestamp_millis())
}
