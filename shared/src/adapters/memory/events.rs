//! Events in the embedded store.

use super::MemoryStore;
use crate::domain::Event;
use crate::domain::OrgSlug;
use crate::ports::{EventStore, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[async_trait]
impl EventStore for MemoryStore {
    async fn insert_event(&self, event: &Event) -> StoreResult<Option<Event>> {
        let mut state = self.state_mut();
        let key = (event.org.clone(), event.id.clone());
        // An expired event is replaced: its id is free again.
        if let Some(existing) = state
            .events
            .get(&key)
            .filter(|e| self.retention.is_live(e.created_at))
        {
            return Ok(Some(existing.clone()));
        }
        state.events.insert(key, event.clone());
        Ok(None)
    }

    async fn get_event(&self, org: &OrgSlug, id: &str) -> StoreResult<Option<Event>> {
        Ok(self
            .state()
            .events
            .get(&(org.to_owned(), id.to_owned()))
            .filter(|e| self.retention.is_live(e.created_at))
            .cloned())
    }

    async fn take_over_fan_out(
        &self,
        org: &OrgSlug,
        id: &str,
        seen: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
        holder: Uuid,
    ) -> StoreResult<bool> {
        let mut state = self.state_mut();
        Ok(
            match state.events.get_mut(&(org.to_owned(), id.to_owned())) {
                Some(e) if e.fan_out_until == seen || e.fan_out_holder == Some(holder) => {
                    e.fan_out_until = Some(until);
                    e.fan_out_holder = Some(holder);
                    true
                }
                _ => false,
            },
        )
    }
}
