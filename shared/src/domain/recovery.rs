//! Recovery: re-sending every failed delivery of an endpoint created in a window, as
//! manual attempts, by a job that works through them a chunk at a time.

use super::numbers::{DeliverySeq, EndpointNumber};
use super::org::OrgSlug;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A failed delivery's place in its endpoint's list of failed deliveries: creation
/// time, then sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FailedPosition {
    pub created_at: DateTime<Utc>,
    pub seq: DeliverySeq,
}

/// Where a failed delivery sits in that list.
pub fn failed_position(d: &crate::domain::Delivery) -> FailedPosition {
    FailedPosition {
        created_at: d.created_at,
        seq: d.key.seq,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryStatus {
    Running,
    Done,
}

impl RecoveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub id: Uuid,
    pub org: OrgSlug,
    pub endpoint_id: Uuid,
    pub endpoint_number: EndpointNumber,
    /// Deliveries created in [since, until) are re-sent; `until` is the request's time
    /// when it did not give one.
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub status: RecoveryStatus,
    /// Deliveries re-sent so far.
    pub queued: u64,
    pub created_at: DateTime<Utc>,
    /// When the recovery last moved (its start, then each chunk).
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The last failed delivery handled; the next chunk starts after it.
    pub position: Option<FailedPosition>,
}

/// A running recovery that has not moved for this long no longer keeps its endpoint from
/// starting another: its job was lost (a start whose queueing failed after its record
/// was written, a message given up to the dead-letter queue). A chunk is one queue
/// message, so a live recovery moves far more often.
pub const STALLED_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(1);

impl Recovery {
    /// Whether this recovery keeps its endpoint from starting another at `now`: one
    /// running recovery per endpoint, so two never re-send the same deliveries.
    pub fn is_running_at(&self, now: DateTime<Utc>) -> bool {
        self.status == RecoveryStatus::Running && now - self.updated_at < STALLED_AFTER
    }

    /// The recovery after a chunk that ended at `position` and re-sent `queued`
    /// deliveries; done when it was the last.
    pub fn advanced(
        &self,
        position: Option<FailedPosition>,
        queued: u64,
        last: bool,
        now: DateTime<Utc>,
    ) -> Self {
        let mut next = self.clone();
        next.queued += queued;
        next.position = position;
        next.updated_at = now;
        if last {
            next.status = RecoveryStatus::Done;
            next.finished_at = Some(now);
        }
        next
    }
}
