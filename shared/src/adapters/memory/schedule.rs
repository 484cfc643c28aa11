//! The due list in the embedded store.

use super::MemoryStore;
use crate::domain::time::minute_of;
use crate::domain::{DeliveryKey, DeliverySeq, EndpointNumber, ScheduledAttempt};
use crate::ports::{Schedule, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl Schedule for MemoryStore {
    async fn schedule(&self, attempt: &ScheduledAttempt) -> StoreResult<()> {
        let key = DeliveryKey::from_id(attempt.job.delivery_id)
            .ok_or_else(|| StoreError::Backend("scheduled attempt of an unknown id".into()))?;
        self.state_mut().schedule.insert(
            (minute_of(attempt.at), key, attempt.attempt),
            attempt.clone(),
        );
        Ok(())
    }

    async fn due_in_minute(&self, minute: DateTime<Utc>) -> StoreResult<Vec<ScheduledAttempt>> {
        let minute = minute_of(minute);
        let low = (
            minute,
            DeliveryKey {
                endpoint_number: EndpointNumber(0),
                seq: DeliverySeq::NONE,
            },
            0,
        );
        let high = (
            minute,
            DeliveryKey {
                endpoint_number: EndpointNumber(u32::MAX),
                seq: DeliverySeq(u64::MAX),
            },
            u32::MAX,
        );
        Ok(self
            .state()
            .schedule
            .range(low..=high)
            .map(|(_, a)| a.clone())
            .collect())
    }

    async fn scheduled_through(&self) -> StoreResult<Option<DateTime<Utc>>> {
        Ok(self.state().scheduled_through)
    }

    async fn mark_scheduled_through(
        &self,
        seen: Option<DateTime<Utc>>,
        minute: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut state = self.state_mut();
        if state.scheduled_through != seen {
            return Ok(false);
        }
        state.scheduled_through = Some(minute);
        Ok(true)
    }
}
