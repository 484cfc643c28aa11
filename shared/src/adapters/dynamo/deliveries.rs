//! Events, deliveries, attempts and the endpoint's failure counter on DynamoDB.

use super::expr::UpdateExpr;
use super::items::{AttemptItem, DeliveryItem, EventItem, gsi2_placement, keys};
use super::{DynamoStore, Item, backend, decode, is_conditional_failure, mapping, n, s};
use crate::domain::delivery::{page_range, page_total};
use crate::domain::time::format as ts;
use crate::domain::{Attempt, AttemptOutcome, Delivery, DeliveryStatus, Endpoint, Event, Lease};
use crate::ports::{ClaimFor, DeliveryStore, EndpointHealth, EventStore, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, Put, ReturnValue, TransactWriteItem, Update, WriteRequest,
};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use uuid::Uuid;

fn delivery_from(item: Item) -> Result<Delivery, StoreError> {
    decode::<DeliveryItem, Delivery>(item)
}

/// The `SET`/`REMOVE` clauses that place a delivery in `gsi2` for its new state.
fn placed(expr: UpdateExpr, d: &Delivery) -> UpdateExpr {
    let (pk, sk) = gsi2_placement(d).unzip();
    expr.set("status", s(status_str(d.status)))
        .set_or_remove(
            "next_attempt_at",
            d.next_attempt_at.as_ref().map(|t| s(ts(t))),
        )
        .set_or_remove("gsi2pk", pk.map(s))
        .set_or_remove("gsi2sk", sk.map(s))
        .set("updated_at", s(ts(&d.updated_at)))
}

fn status_str(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Retrying => "retrying",
        DeliveryStatus::Succeeded => "succeeded",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::Paused => "paused",
    }
}

/// Rounds of `record_attempt` against manual retry requests arriving meanwhile (each
/// round needs a new request to fail; a person clicking "retry" is never that fast).
const RECORD_ROUNDS: usize = 4;

impl DynamoStore {
    fn expires_at(&self, from: DateTime<Utc>) -> i64 {
        (from + self.retention).timestamp()
    }

    /// Run a conditional `UpdateItem` on a delivery; `Ok(None)` when the condition fails.
    async fn update_delivery(
        &self,
        id: Uuid,
        expr: UpdateExpr,
        condition: &str,
    ) -> Result<Option<Delivery>, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::delivery_pk(id)))
            .key("sk", s(keys::DELIVERY_SK))
            .condition_expression(condition)
            .return_values(ReturnValue::AllNew);
        let result = expr.update_item(request).send().await;
        match result {
            Ok(out) => out.attributes.map(delivery_from).transpose(),
            Err(err) if is_conditional_failure(&err) => Ok(None),
            Err(err) => Err(backend(err)),
        }
    }

    /// The lowest sequence number still stored for an endpoint.
    async fn lowest_seq(&self, endpoint: Uuid) -> Result<Option<u64>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(super::schema::GSI1)
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", s(keys::endpoint_deliveries_gsi1pk(endpoint)))
            .projection_expression("seq")
            .scan_index_forward(true)
            .limit(1)
            .send()
            .await
            .map_err(backend)?;
        Ok(out
            .items
            .unwrap_or_default()
            .first()
            .and_then(|i| i.get("seq"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok()))
    }

    async fn query_gsi2(
        &self,
        pk: String,
        upper: Option<String>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(super::schema::GSI2)
            .expression_attribute_values(":pk", s(pk))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        request = match upper {
            Some(u) => request
                .key_condition_expression("gsi2pk = :pk AND gsi2sk <= :upper")
                .expression_attribute_values(":upper", s(u)),
            None => request.key_condition_expression("gsi2pk = :pk"),
        };
        let out = request.send().await.map_err(backend)?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(delivery_from)
            .collect()
    }

    /// `BatchWriteItem` deletes, 25 at a time, retrying what DynamoDB hands back.
    async fn delete_keys(&self, keys: Vec<Item>) -> Result<(), StoreError> {
        for chunk in keys.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|key| {
                    DeleteRequest::builder()
                        .set_key(Some(key.clone()))
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(|e| StoreError::Backend(e.to_string()))
                })
                .collect::<Result<_, _>>()?;
            for round in 0..8u32 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(backend)?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50 << round)).await;
            }
            if !requests.is_empty() {
                return Err(StoreError::Backend(
                    "BatchWriteItem left items unprocessed".into(),
                ));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl EventStore for DynamoStore {
    async fn insert_event(&self, event: &Event) -> Result<(), StoreError> {
        let item = EventItem::new(event, self.expires_at(event.created_at));
        self.put_new(serde_dynamo::to_item(item).map_err(mapping)?)
            .await
    }

    async fn get_event(&self, org: &str, id: &str) -> Result<Option<Event>, StoreError> {
        self.get(keys::org_pk(org), &keys::event_sk(id), true)
            .await?
            .map(decode::<EventItem, Event>)
            .transpose()
    }

    async fn mark_fanned_out(&self, org: &str, id: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::org_pk(org)))
            .key("sk", s(keys::event_sk(id)))
            .update_expression("SET fanned_out = :yes")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await
            .map(|_| ())
            .or_else(|err| {
                if is_conditional_failure(&err) {
                    Ok(())
                } else {
                    Err(backend(err))
                }
            })
    }

    async fn take_over_fan_out(
        &self,
        org: &str,
        id: &str,
        seen: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::org_pk(org)))
            .key("sk", s(keys::event_sk(id)))
            .update_expression("SET fan_out_until = :until")
            .expression_attribute_values(":until", n(until.timestamp_millis()))
            .expression_attribute_values(":no", AttributeValue::Bool(false));
        let request = match seen {
            Some(seen) => request
                .condition_expression("fanned_out = :no AND fan_out_until = :seen")
                .expression_attribute_values(":seen", n(seen.timestamp_millis())),
            None => request
                .condition_expression("fanned_out = :no AND attribute_not_exists(fan_out_until)"),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err) if is_conditional_failure(&err) => Ok(false),
            Err(err) => Err(backend(err)),
        }
    }
}

#[async_trait]
impl DeliveryStore for DynamoStore {
    async fn next_delivery_seq(
        &self,
        org: &str,
        endpoint_id: Uuid,
    ) -> Result<Option<u64>, StoreError> {
        self.increment(
            keys::org_pk(org),
            &keys::endpoint_sk(endpoint_id),
            "delivery_seq",
        )
        .await
    }

    async fn insert_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let item = DeliveryItem::new(delivery, self.expires_at(delivery.created_at));
        self.put_new(serde_dynamo::to_item(item).map_err(mapping)?)
            .await
    }

    async fn get_delivery(&self, id: Uuid) -> Result<Option<Delivery>, StoreError> {
        self.get(keys::delivery_pk(id), keys::DELIVERY_SK, true)
            .await?
            .map(delivery_from)
            .transpose()
    }

    async fn list_attempts(&self, id: Uuid) -> Result<Vec<Attempt>, StoreError> {
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :att)")
            .expression_attribute_values(":pk", s(keys::delivery_pk(id)))
            .expression_attribute_values(":att", s("ATT#"))
            .consistent_read(true);
        self.query_all(request)
            .await?
            .into_iter()
            .map(decode::<AttemptItem, Attempt>)
            .collect()
    }

    async fn delivery_page(
        &self,
        endpoint: &Endpoint,
        page: u32,
        per_page: u32,
    ) -> Result<(Vec<Delivery>, u64), StoreError> {
        let bottom = self.lowest_seq(endpoint.id).await?;
        let total = page_total(bottom, endpoint.delivery_seq);
        let Some((lo, hi)) =
            bottom.and_then(|b| page_range(b, endpoint.delivery_seq, page, per_page))
        else {
            return Ok((Vec::new(), total));
        };
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(super::schema::GSI1)
            .key_condition_expression("gsi1pk = :pk AND gsi1sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(keys::endpoint_deliveries_gsi1pk(endpoint.id)))
            .expression_attribute_values(":lo", s(keys::seq_gsi1sk(lo)))
            .expression_attribute_values(":hi", s(keys::seq_gsi1sk(hi)))
            .scan_index_forward(false)
            .send()
            .await
            .map_err(backend)?;
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(delivery_from)
            .collect::<Result<_, _>>()?;
        Ok((items, total))
    }

    async fn claim(
        &self,
        id: Uuid,
        claim: ClaimFor,
        lease: Lease,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError> {
        let free = "(attribute_not_exists(#lease_until) OR #lease_until < :now)";
        let expr = UpdateExpr::new()
            .set("lease_id", s(lease.id.to_string()))
            .set("lease_until", s(ts(&lease.until)))
            .value(":now", s(ts(&now)));
        let (expr, condition) = match claim {
            ClaimFor::Attempt(number) => (
                expr.value(":prev", n(number.saturating_sub(1)))
                    .value(":pending", s("pending"))
                    .value(":retrying", s("retrying"))
                    .condition_name("attempt_count")
                    .condition_name("status"),
                format!("#attempt_count = :prev AND #status IN (:pending, :retrying) AND {free}"),
            ),
            // The request stays open until the attempt is recorded.
            ClaimFor::Manual(request) => (
                expr.value(":request", s(request.to_string()))
                    .condition_name("manual_retry"),
                format!("#manual_retry = :request AND {free}"),
            ),
        };
        self.update_delivery(id, expr, &condition).await
    }

    async fn record_attempt(
        &self,
        claimed: &Delivery,
        lease: Uuid,
        attempt: &Attempt,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError> {
        let id = claimed.id;
        let item = serde_dynamo::to_item(AttemptItem::new(id, attempt, self.expires_at(now)))
            .map_err(mapping)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        // The manual retry request as last seen. The write holds only if it is still the
        // stored one; if a retry was requested during the attempt, read it and write
        // again, so it stays open (and due now) instead of being lost.
        let mut open = claimed.manual_retry;
        for _ in 0..RECORD_ROUNDS {
            let recorded = claimed.recorded(attempt, outcome, open, now);
            let mut expr = placed(UpdateExpr::new(), &recorded)
                .set("attempt_count", n(attempt.attempt_number))
                .set_or_remove("last_status_code", attempt.status_code.map(n))
                .set_or_remove(
                    "manual_retry",
                    recorded.manual_retry.map(|r| s(r.to_string())),
                )
                .remove("lease_id")
                .remove("lease_until")
                .value(":lease", s(lease.to_string()));
            let condition = match open {
                Some(request) => {
                    expr = expr.value(":open", s(request.to_string()));
                    "#lease_id = :lease AND #manual_retry = :open"
                }
                None => "#lease_id = :lease AND attribute_not_exists(#manual_retry)",
            };
            let update = expr
                .transact_update(
                    Update::builder()
                        .table_name(&self.table)
                        .key("pk", s(keys::delivery_pk(id)))
                        .key("sk", s(keys::DELIVERY_SK))
                        .condition_expression(condition),
                )
                .build()
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            let items = vec![
                TransactWriteItem::builder().put(put.clone()).build(),
                TransactWriteItem::builder().update(update).build(),
            ];
            if self.transact(items).await?.is_none() {
                return Ok(Some(recorded));
            }
            match self.get_delivery(id).await? {
                Some(stored) if stored.lease.is_some_and(|l| l.id == lease) => {
                    open = stored.manual_retry;
                }
                // The claim is lost (or the attempt recorded already): write nothing.
                _ => return Ok(None),
            }
        }
        Err(StoreError::Backend(
            "manual retry requests kept changing while an attempt was recorded".into(),
        ))
    }

    async fn hold(
        &self,
        claimed: &Delivery,
        lease: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // `manual_retry` is left as stored: a request made meanwhile stays open.
        let expr = placed(UpdateExpr::new(), &claimed.parked(now))
            .remove("lease_until")
            .remove("lease_id")
            .value(":lease", s(lease.to_string()));
        Ok(self
            .update_delivery(claimed.id, expr, "#lease_id = :lease")
            .await?
            .is_some())
    }

    async fn request_retry(
        &self,
        id: Uuid,
        request: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // What `Delivery::retry_requested` changes: the request, due now, not held.
        let when = ts(&now);
        let expr = UpdateExpr::new()
            .set("manual_retry", s(request.to_string()))
            .set("next_attempt_at", s(when.clone()))
            .set("gsi2pk", s(keys::due_gsi2pk(id)))
            .set("gsi2sk", s(keys::due_gsi2sk(&when, id)));
        Ok(self
            .update_delivery(id, expr, "attribute_exists(pk)")
            .await?
            .is_some())
    }

    async fn paused_deliveries(
        &self,
        endpoint_id: Uuid,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.query_gsi2(keys::paused_gsi2pk(endpoint_id), None, limit)
            .await
    }

    async fn resume_delivery(
        &self,
        held: &Delivery,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let expr = placed(UpdateExpr::new(), &held.resumed(now))
            .value(":held", s(keys::PAUSED_GSI2PK_PREFIX))
            .value(":seen", s(status_str(held.status)));
        Ok(self
            .update_delivery(
                held.id,
                expr,
                "begins_with(#gsi2pk, :held) AND #status = :seen",
            )
            .await?
            .is_some())
    }

    async fn endpoint_delivery_ids(
        &self,
        endpoint_id: Uuid,
        limit: u32,
    ) -> Result<Vec<Uuid>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(super::schema::GSI1)
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", s(keys::endpoint_deliveries_gsi1pk(endpoint_id)))
            .projection_expression("id")
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(backend)?;
        Ok(out
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|i| {
                i.get("id")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|v| v.parse().ok())
            })
            .collect())
    }

    async fn delete_deliveries(&self, ids: &[Uuid]) -> Result<(), StoreError> {
        let mut keys_to_delete = Vec::new();
        for id in ids {
            let request = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(keys::delivery_pk(*id)))
                .projection_expression("pk, sk");
            for item in self.query_all(request).await? {
                let key: Item = item
                    .into_iter()
                    .filter(|(k, _)| k == "pk" || k == "sk")
                    .collect();
                keys_to_delete.push(key);
            }
        }
        self.delete_keys(keys_to_delete).await
    }

    async fn due_deliveries(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        // `~` sorts after every character of an id, so `<time>#~` bounds every key at `<time>`.
        let upper = format!("{}#~", ts(&before));
        let mut due = Vec::new();
        for shard in 0..keys::DUE_SHARDS {
            let pk = format!("{}{shard}", keys::DUE_GSI2PK_PREFIX);
            due.extend(self.query_gsi2(pk, Some(upper.clone()), limit).await?);
        }
        due.sort_by_key(|d: &Delivery| (d.next_attempt_at, d.id));
        due.truncate(limit as usize);
        Ok(due)
    }

    async fn touch_due(
        &self,
        id: Uuid,
        seen: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let expr = UpdateExpr::new()
            .set("next_attempt_at", s(ts(&at)))
            .set("gsi2sk", s(keys::due_gsi2sk(&ts(&at), id)))
            .value(":seen", s(ts(&seen)))
            .value(":due", s(keys::DUE_GSI2PK_PREFIX))
            .condition_name("gsi2pk");
        let condition = "begins_with(#gsi2pk, :due) AND #next_attempt_at = :seen";
        Ok(self.update_delivery(id, expr, condition).await?.is_some())
    }
}

#[async_trait]
impl EndpointHealth for DynamoStore {
    async fn record_failure(&self, org: &str, id: Uuid) -> Result<Option<u32>, StoreError> {
        let count = self
            .increment(
                keys::org_pk(org),
                &keys::endpoint_sk(id),
                "consecutive_failures",
            )
            .await?;
        Ok(count.map(|c| u32::try_from(c).unwrap_or(u32::MAX)))
    }

    async fn record_success(&self, org: &str, id: Uuid) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::org_pk(org)))
            .key("sk", s(keys::endpoint_sk(id)))
            .update_expression("SET consecutive_failures = :zero")
            .condition_expression("consecutive_failures > :zero")
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if is_conditional_failure(&err) => Ok(()),
            Err(err) => Err(backend(err)),
        }
    }

    async fn pause_endpoint(
        &self,
        org: &str,
        id: Uuid,
        min_failures: Option<u32>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut values: HashMap<String, AttributeValue> = HashMap::from([
            (":false".to_owned(), AttributeValue::Bool(false)),
            (":true".to_owned(), AttributeValue::Bool(true)),
            (":now".to_owned(), s(ts(&now))),
        ]);
        let mut condition = "is_active = :true".to_owned();
        if let Some(min) = min_failures {
            values.insert(":min".into(), n(min));
            condition.push_str(" AND consecutive_failures >= :min");
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::org_pk(org)))
            .key("sk", s(keys::endpoint_sk(id)))
            .update_expression("SET is_active = :false, updated_at = :now")
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_conditional_failure(&err) => Ok(false),
            Err(err) => Err(backend(err)),
        }
    }
}
