//! Events on DynamoDB: one item each, in a partition of its own.

use super::items::events::EventItem;
use super::{DynamoStore, applied, backend, decode, mapping, ms, n, s, table_keys};
use crate::domain::Event;
use crate::domain::OrgSlug;
use crate::ports::{EventStore, StoreError, StoreResult};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[async_trait]
impl EventStore for DynamoStore {
    async fn insert_event(&self, event: &Event) -> StoreResult<Option<Event>> {
        let item = serde_dynamo::to_item(EventItem::new(event, self.expires_at(event.created_at)))
            .map_err(mapping)?;
        // The existing event comes back with the refusal: no read before the write.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            // An expired event TTL has not deleted yet is replaced: its id is free again.
            .condition_expression("attribute_not_exists(pk) OR ca <= :cutoff")
            .expression_attribute_values(":cutoff", n(self.retention.cutoff().timestamp_millis()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    match failed.item() {
                        Some(existing) => decode::<EventItem, Event>(existing.clone()).map(Some),
                        None => Err(StoreError::AlreadyExists),
                    }
                }
                _ => Err(backend(err)),
            },
        }
    }

    async fn get_event(&self, org: &OrgSlug, id: &str) -> StoreResult<Option<Event>> {
        // Events do not change after they are written (but for the fan-out hold, which
        // only `insert_event`'s answer is used for): a cheap eventually consistent read.
        Ok(self
            .get(table_keys::event_pk(org, id), table_keys::EVENT_SK, false)
            .await?
            .map(decode::<EventItem, Event>)
            .transpose()?
            .filter(|e| self.retention.is_live(e.created_at)))
    }

    async fn take_over_fan_out(
        &self,
        org: &OrgSlug,
        id: &str,
        seen: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
        holder: Uuid,
    ) -> StoreResult<bool> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(table_keys::event_pk(org, id)))
            .key("sk", s(table_keys::EVENT_SK))
            .update_expression("SET fu = :until, fo = :holder")
            .expression_attribute_values(":until", ms(until))
            .expression_attribute_values(":holder", s(holder.to_string()));
        // Its own write again (applied, then reported failed, or sent twice by the SDK)
        // finds the hold already `holder`'s: applied again, not refused.
        let request = match seen {
            Some(seen) => request
                .condition_expression("fu = :seen OR fo = :holder")
                .expression_attribute_values(":seen", ms(seen)),
            None => request.condition_expression(
                "(attribute_exists(pk) AND attribute_not_exists(fu)) OR fo = :holder",
            ),
        };
        applied(request.send().await)
    }
}
