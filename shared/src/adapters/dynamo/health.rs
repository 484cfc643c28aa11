//! The circuit breaker's counter on DynamoDB: an attribute of the endpoint's item.

use super::{DynamoStore, applied, backend, is_conditional_failure, n, s, table_keys};
use crate::domain::OrgSlug;
use crate::domain::Pause;
use crate::ports::{EndpointHealth, StoreError, StoreResult};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use uuid::Uuid;

#[async_trait]
impl EndpointHealth for DynamoStore {
    async fn record_failures(
        &self,
        org: &OrgSlug,
        id: Uuid,
        failures: u32,
    ) -> StoreResult<Option<u32>> {
        let count = self
            .increment(
                table_keys::org_pk(org),
                &table_keys::endpoint_sk(id),
                "consecutive_failures",
                failures,
            )
            .await?;
        Ok(count.map(|c| u32::try_from(c).unwrap_or(u32::MAX)))
    }

    async fn record_success(&self, org: &OrgSlug, id: Uuid) -> StoreResult<u32> {
        // A read of the count as it is now, and a write only when there is something to
        // reset (compare-and-set, so a failure counted meanwhile is not lost): a read unit
        // is a fifth of a write unit's price, and most successes find zero.
        for _ in 0..4 {
            let Some(item) = self
                .get(table_keys::org_pk(org), &table_keys::endpoint_sk(id), true)
                .await?
            else {
                return Ok(0);
            };
            let count = item
                .get("consecutive_failures")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            if count == 0 {
                return Ok(0);
            }
            let result = self
                .endpoint_update(org, id)
                .update_expression("SET consecutive_failures = :zero")
                .condition_expression("consecutive_failures = :seen")
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":seen", n(count))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(u32::try_from(count).unwrap_or(u32::MAX)),
                Err(err) if is_conditional_failure(&err) => continue,
                Err(err) => return Err(backend(err)),
            }
        }
        Err(StoreError::Backend(
            "the failure count kept changing while a success reset it".into(),
        ))
    }

    async fn pause_endpoint(&self, org: &OrgSlug, id: Uuid, pause: Pause) -> StoreResult<bool> {
        let Pause {
            by,
            at,
            min_failures,
        } = pause;
        let mut values: HashMap<String, AttributeValue> = HashMap::from([
            (":false".to_owned(), AttributeValue::Bool(false)),
            (":true".to_owned(), AttributeValue::Bool(true)),
            (":now".to_owned(), s(crate::domain::time::format(&at))),
            (":by".to_owned(), s(by.as_str())),
        ]);
        let mut condition = "is_active = :true".to_owned();
        if let Some(min) = min_failures {
            values.insert(":min".into(), n(min));
            condition.push_str(" AND consecutive_failures >= :min");
        }
        let result = self
            .endpoint_update(org, id)
            .update_expression("SET is_active = :false, paused_by = :by, updated_at = :now")
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        applied(result)
    }
}
