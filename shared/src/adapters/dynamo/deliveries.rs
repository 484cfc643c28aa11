//! Deliveries on DynamoDB: each endpoint's history in a partition of its own, by
//! sequence number; held and failed ones also in the sparse index `gsi2`.

use super::expr::UpdateExpr;
use super::items::deliveries::{AttemptItem, DeliveryItem, index_placement};
use super::{
    DynamoStore, Item, backend, decode, is_conditional_failure, mapping, ms, n, s, schema,
    table_keys,
};
use crate::domain::OrgSlug;
use crate::domain::delivery::{page_range, page_total};
use crate::domain::recovery::FailedPosition;
use crate::domain::{
    Attempt, AttemptOutcome, Delivery, DeliveryKey, DeliveryStatus, Endpoint, Expect,
};
use crate::domain::{DeliverySeq, EndpointNumber};
use crate::ports::{DeliveryStore, RetryOf, StoreError, StoreResult};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, ReturnValue, Select, WriteRequest};
use chrono::{DateTime, Utc};
use uuid::Uuid;

fn delivery_from(item: Item) -> StoreResult<Delivery> {
    decode::<DeliveryItem, Delivery>(item)
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

/// The `SET`/`REMOVE` clauses for a delivery's state (status, times, held placement).
fn state_of(expr: UpdateExpr, d: &Delivery) -> UpdateExpr {
    let (gsi2pk, gsi2sk) = index_placement(d);
    expr.set("st", s(status_str(d.status)))
        .set("ua", ms(d.updated_at))
        .set_or_remove("na", d.next_attempt_at.map(ms))
        .set_or_remove("gsi2pk", gsi2pk.map(s))
        .set_or_remove("gsi2sk", gsi2sk.map(s))
}

/// A write that must find the stored delivery as `expect` says; for a first attempt
/// the delivery may not be stored yet, and then its fixed attributes come from `seed`.
fn expecting(
    expr: UpdateExpr,
    seed: &Delivery,
    expect: Expect,
    expires_at: i64,
) -> (UpdateExpr, String) {
    match expect {
        Expect::Attempt(1) => (
            expr.set_if_absent("org", s(seed.org.as_str()))
                .set_if_absent("ep", s(seed.endpoint_id.to_string()))
                .set_if_absent("ev", s(&seed.event_id))
                .set_if_absent("ty", s(&seed.event_type))
                .set_if_absent("ca", ms(seed.created_at))
                .set_if_absent("expires_at", n(expires_at))
                .condition_name("aa"),
            "attribute_not_exists(#aa)".to_owned(),
        ),
        Expect::Attempt(number) => (
            expr.value(":made", n(number.saturating_sub(1)))
                .condition_name("aa"),
            "#aa = :made".to_owned(),
        ),
        Expect::Request(request) => (
            expr.value(":request", s(request.to_string()))
                .condition_name("mr"),
            "#mr = :request".to_owned(),
        ),
    }
}

impl DynamoStore {
    /// Endpoint `number`'s live failed deliveries created in [since, until), after
    /// `after`, oldest first (`gsi2`, `FAILED#`: creation time then seq); `None` when
    /// the range is empty (DynamoDB refuses a range whose ends are reversed).
    fn failed_query(
        &self,
        number: EndpointNumber,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        after: Option<FailedPosition>,
    ) -> Option<QueryFluentBuilder> {
        // Expired deliveries TTL has not deleted yet are never read: the range starts
        // after the retention cutoff.
        let since = since.max(self.retention.cutoff() + chrono::Duration::milliseconds(1));
        // Keys are fixed-width (until the year 2286: `until` is never later than now),
        // so a key followed by a space sorts after that key and before every greater
        // one; `until` alone sorts before every key of its millisecond, which makes the
        // range end exclusive.
        let from = match after {
            Some(p) => format!(
                "{} ",
                table_keys::failed_gsi2sk(p.created_at.timestamp_millis(), p.seq)
            ),
            None => table_keys::failed_from(since.timestamp_millis()),
        }
        .max(table_keys::failed_from(since.timestamp_millis()));
        let to = table_keys::failed_from(until.timestamp_millis());
        if from >= to {
            return None;
        }
        Some(
            self.client
                .query()
                .table_name(&self.table)
                .index_name(schema::GSI2)
                .key_condition_expression("gsi2pk = :pk AND gsi2sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(table_keys::failed_gsi2pk(number)))
                .expression_attribute_values(":from", s(from))
                .expression_attribute_values(":to", s(to)),
        )
    }

    /// A `Query` of history `number` whose sort key (the sequence number) meets
    /// `sk_condition` on the named `seqs`.
    fn history_query(
        &self,
        number: EndpointNumber,
        sk_condition: &str,
        seqs: &[(&str, DeliverySeq)],
    ) -> QueryFluentBuilder {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(format!("pk = :pk AND sk {sk_condition}"))
            .expression_attribute_values(":pk", s(table_keys::history_pk(number)));
        seqs.iter().fold(query, |query, (name, seq)| {
            query.expression_attribute_values(*name, s(table_keys::seq_sk(*seq)))
        })
    }

    /// The first stored item of history `number` with a sequence number in
    /// `from..=to`: its number and whether it is live.
    async fn first_stored(
        &self,
        number: EndpointNumber,
        from: u64,
        to: u64,
    ) -> StoreResult<Option<(u64, bool)>> {
        let out = self
            .history_query(
                number,
                "BETWEEN :from AND :to",
                &[(":from", DeliverySeq(from)), (":to", DeliverySeq(to))],
            )
            .projection_expression("sk, ca")
            .scan_index_forward(true)
            .limit(1)
            .send()
            .await
            .map_err(backend)?;
        Ok(out.items.unwrap_or_default().first().and_then(|item| {
            let seq = item.get("sk")?.as_s().ok()?.parse().ok()?;
            let created_ms = item.get("ca")?.as_n().ok()?.parse().ok()?;
            let created = DateTime::from_timestamp_millis(created_ms)?;
            Some((seq, self.retention.is_live(created)))
        }))
    }

    /// The lowest live sequence number of history `number` up to `top`. An endpoint's
    /// deliveries expire oldest first, so the expired ones TTL has not deleted yet are a
    /// prefix: the common case is one read (the lowest stored is live); otherwise a
    /// binary search over the numbers, one `Limit 1` query a step, only while TTL lags.
    async fn lowest_live_seq(
        &self,
        number: EndpointNumber,
        top: DeliverySeq,
    ) -> StoreResult<Option<DeliverySeq>> {
        let top = top.0;
        let Some((lowest, live)) = self.first_stored(number, 0, top).await? else {
            return Ok(None);
        };
        if live {
            return Ok(Some(DeliverySeq(lowest)));
        }
        // Every stored number below `lo` is expired; the first live one is below `hi`.
        let (mut lo, mut hi) = (lowest + 1, top + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.first_stored(number, mid, hi - 1).await? {
                None => hi = mid,
                Some((seq, true)) => hi = seq,
                Some((seq, false)) => lo = seq + 1,
            }
        }
        if lo > top {
            return Ok(None);
        }
        // The first stored number from `lo` on is live: exact even across a gap.
        Ok(self
            .first_stored(number, lo, top)
            .await?
            .map(|(seq, _)| DeliverySeq(seq)))
    }

    /// A conditional `UpdateItem` on a delivery; `Ok(None)` when the condition fails.
    async fn update_delivery(
        &self,
        key: DeliveryKey,
        expr: UpdateExpr,
        condition: &str,
    ) -> StoreResult<Option<Delivery>> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(table_keys::history_pk(key.endpoint_number)))
            .key("sk", s(table_keys::seq_sk(key.seq)))
            .condition_expression(condition)
            .return_values(ReturnValue::AllNew);
        match expr.update_item(request).send().await {
            Ok(out) => out.attributes.map(delivery_from).transpose(),
            Err(err) if is_conditional_failure(&err) => Ok(None),
            Err(err) => Err(backend(err)),
        }
    }

    /// `BatchWriteItem` deletes, 25 at a time, retrying what DynamoDB hands back.
    async fn delete_keys(&self, keys: Vec<Item>) -> StoreResult<()> {
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
impl DeliveryStore for DynamoStore {
    async fn next_delivery_seq(
        &self,
        org: &OrgSlug,
        endpoint_id: Uuid,
    ) -> StoreResult<Option<DeliverySeq>> {
        let seq = self
            .increment(
                table_keys::org_pk(org),
                &table_keys::endpoint_sk(endpoint_id),
                "delivery_seq",
                1,
            )
            .await?;
        Ok(seq.map(DeliverySeq))
    }

    async fn insert_delivery(&self, delivery: &Delivery) -> StoreResult<bool> {
        let item = DeliveryItem::new(delivery, self.expires_at(delivery.created_at));
        match self
            .put_new(serde_dynamo::to_item(item).map_err(mapping)?)
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::AlreadyExists) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn get_delivery(&self, key: DeliveryKey) -> StoreResult<Option<Delivery>> {
        Ok(self
            .get(
                table_keys::history_pk(key.endpoint_number),
                &table_keys::seq_sk(key.seq),
                false,
            )
            .await?
            .map(delivery_from)
            .transpose()?
            .filter(|d| self.retention.is_live(d.created_at)))
    }

    async fn history_newest(
        &self,
        number: EndpointNumber,
        at_or_below: DeliverySeq,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        let out = self
            .history_query(number, "<= :top", &[(":top", at_or_below)])
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(backend)?;
        let mut items: Vec<Delivery> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(delivery_from)
            .collect::<Result<_, _>>()?;
        // The expired ones are the oldest: filtering them shortens the read, and there
        // are no live ones below them.
        items.retain(|d| self.retention.is_live(d.created_at));
        Ok(items)
    }

    async fn delivery_page(
        &self,
        endpoint: &Endpoint,
        page: u32,
        per_page: u32,
    ) -> StoreResult<(Vec<Delivery>, u64)> {
        let bottom = self
            .lowest_live_seq(endpoint.number, endpoint.delivery_seq)
            .await?;
        let total = page_total(bottom, endpoint.delivery_seq);
        let Some((lo, hi)) =
            bottom.and_then(|b| page_range(b, endpoint.delivery_seq, page, per_page))
        else {
            return Ok((Vec::new(), total));
        };
        let request = self
            .history_query(
                endpoint.number,
                "BETWEEN :lo AND :hi",
                &[(":lo", lo), (":hi", hi)],
            )
            .scan_index_forward(false);
        let mut items: Vec<Delivery> = self
            .query_all(request)
            .await?
            .into_iter()
            .map(delivery_from)
            .collect::<Result<_, _>>()?;
        // A delivery made after a later one (a publish retried late) may expire first.
        items.retain(|d| self.retention.is_live(d.created_at));
        Ok((items, total))
    }

    async fn find_event_delivery(
        &self,
        number: EndpointNumber,
        after: DeliverySeq,
        event_id: &str,
        created_before: DateTime<Utc>,
    ) -> StoreResult<Option<Delivery>> {
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .history_query(number, "> :after", &[(":after", after)])
                .consistent_read(true)
                .limit(50)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(backend)?;
            for item in page.items.unwrap_or_default() {
                let d = delivery_from(item)?;
                if d.created_at >= created_before {
                    return Ok(None);
                }
                if d.event_id == event_id {
                    return Ok(Some(d));
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(None),
            }
        }
    }

    async fn record_attempt(
        &self,
        seed: &Delivery,
        expect: Expect,
        attempt: &Attempt,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Delivery>> {
        // What `Delivery::recorded` changes, written without reading first: the attempt
        // appended (its number is its place), the outcome, the kept body.
        let after = seed.recorded(attempt, outcome, expect, now);
        let item = serde_dynamo::to_attribute_value(AttemptItem::new(attempt)).map_err(mapping)?;
        let body = after
            .attempts
            .last()
            .map(|a| a.response_body.clone())
            .unwrap_or_default();
        let mut expr = state_of(UpdateExpr::new(), &after)
            .append("at", AttributeValue::L(vec![item]))
            .set_or_remove("rb", (!body.is_empty()).then(|| s(body)));
        expr = match expect {
            Expect::Attempt(_) => expr.add("aa", n(1)),
            Expect::Request(_) => expr.remove("mr"),
        };
        let (expr, condition) = expecting(expr, seed, expect, self.expires_at(seed.created_at));
        self.update_delivery(seed.key, expr, &condition).await
    }

    async fn hold(&self, seed: &Delivery, expect: Expect, now: DateTime<Utc>) -> StoreResult<bool> {
        let held_delivery = seed.on_hold(now);
        let expr = state_of(UpdateExpr::new(), &held_delivery);
        let (expr, condition) = expecting(expr, seed, expect, self.expires_at(seed.created_at));
        // The status is set from the one read: it must still be that one.
        let expr = expr
            .value(":seen", s(status_str(seed.status)))
            .condition_name("st");
        let condition = format!("({condition}) AND (attribute_not_exists(#st) OR #st = :seen)");
        Ok(self
            .update_delivery(seed.key, expr, &condition)
            .await?
            .is_some())
    }

    async fn request_retry(
        &self,
        key: DeliveryKey,
        request: Uuid,
        of: RetryOf,
    ) -> StoreResult<Option<Delivery>> {
        let expr = UpdateExpr::new().set("mr", s(request.to_string()));
        match of {
            RetryOf::Any => {
                self.update_delivery(key, expr, "attribute_exists(pk)")
                    .await
            }
            RetryOf::Failed => {
                let expr = expr
                    .condition_name("st")
                    .value(":failed", s(status_str(DeliveryStatus::Failed)));
                self.update_delivery(key, expr, "#st = :failed").await
            }
        }
    }

    async fn held_deliveries(
        &self,
        number: EndpointNumber,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(schema::GSI2)
            .key_condition_expression("gsi2pk = :pk")
            .expression_attribute_values(":pk", s(table_keys::held_gsi2pk(number)))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(backend)?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(delivery_from)
            .collect()
    }

    async fn resume_delivery(&self, held: &Delivery, now: DateTime<Utc>) -> StoreResult<bool> {
        let expr = state_of(UpdateExpr::new(), &held.resumed(now))
            .value(":seen", s(status_str(held.status)))
            .value(
                ":held",
                s(table_keys::held_gsi2pk(held.key.endpoint_number)),
            );
        Ok(self
            .update_delivery(held.key, expr, "#gsi2pk = :held AND #st = :seen")
            .await?
            .is_some())
    }

    async fn purge_deliveries(&self, number: EndpointNumber, limit: u32) -> StoreResult<usize> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(table_keys::history_pk(number)))
            .projection_expression("pk, sk")
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(backend)?;
        let keys: Vec<Item> = out.items.unwrap_or_default();
        let count = keys.len();
        self.delete_keys(keys).await?;
        Ok(count)
    }

    async fn failed_deliveries(
        &self,
        number: EndpointNumber,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        after: Option<FailedPosition>,
        limit: u32,
    ) -> StoreResult<(Vec<Delivery>, bool)> {
        let Some(query) = self.failed_query(number, since, until, after) else {
            return Ok((Vec::new(), false));
        };
        let out = query
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(backend)?;
        // The range starts after the retention cutoff, so every item read is live, and
        // whether more follow is what DynamoDB says (a page may also end at 1 MB).
        let more = out.last_evaluated_key.is_some_and(|k| !k.is_empty());
        let failed = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(delivery_from)
            .collect::<Result<_, _>>()?;
        Ok((failed, more))
    }

    async fn count_failed(
        &self,
        number: EndpointNumber,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        at_most: u64,
    ) -> StoreResult<u64> {
        // A count reads what it counts, but sends back none of it; each page asks for
        // no more than is left to count, so reading stops at `at_most`.
        let Some(query) = self.failed_query(number, since, until, None) else {
            return Ok(0);
        };
        let query = query.select(Select::Count);
        let mut count = 0;
        let mut start = None;
        while count < at_most {
            let left = i32::try_from(at_most - count).unwrap_or(i32::MAX);
            let page = query
                .clone()
                .limit(left)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(backend)?;
            count += u64::try_from(page.count).unwrap_or(0);
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(count.min(at_most))
    }
}
