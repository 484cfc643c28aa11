//! How events are stored.

use super::error::StoreResult;
use crate::domain::Event;
use crate::domain::OrgSlug;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Events, stored once per publish.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Store a new event. If the organisation already has an event with its id, nothing
    /// is written and that event is returned instead (one request either way).
    async fn insert_event(&self, event: &Event) -> StoreResult<Option<Event>>;
    async fn get_event(&self, org: &OrgSlug, id: &str) -> StoreResult<Option<Event>>;
    /// Take over (or give up, with `until` in the past) the fan-out of an event from the
    /// holder last seen (`seen`): hold it until `until`, as `holder`. `false` if someone
    /// else holds it now. A holder's own write succeeds again when repeated (the hold is
    /// still `holder`'s), so a write applied but reported failed can be sent again.
    async fn take_over_fan_out(
        &self,
        org: &OrgSlug,
        id: &str,
        seen: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
        holder: Uuid,
    ) -> StoreResult<bool>;
}
