//! Events, deliveries and attempts: what is stored for every webhook sent.

use super::AttemptError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A published event, stored once: `payload` is the exact envelope sent on every attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub org: String,
    pub id: String,
    pub event_type: String,
    pub created_at: DateTime<Utc>,
    /// `{"id","type","created_at","org","data"}`, serialised once at publish time.
    pub payload: String,
    /// The endpoints the first publish chose; a repeat answers with their count.
    pub targets: Vec<Uuid>,
    /// Whether every target's delivery is written. A publish that died half-way leaves
    /// `false`, and a repeat with the same id finishes the fan-out.
    pub fanned_out: bool,
}

impl Event {
    pub fn delivery_count(&self) -> u32 {
        u32::try_from(self.targets.len()).unwrap_or(u32::MAX)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Queued, not yet tried.
    Pending,
    /// Failed at least once; the next attempt is scheduled.
    Retrying,
    Succeeded,
    /// Retries exhausted, or not retryable.
    Failed,
    /// Held because the endpoint is inactive; re-queued when it is resumed.
    Paused,
}

impl DeliveryStatus {
    /// Whether a delivery in this state waits for an attempt (and so sits in the due index).
    pub fn is_due(self) -> bool {
        matches!(self, DeliveryStatus::Pending | DeliveryStatus::Retrying)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Automatic,
    Manual,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// UUID v7.
    pub id: Uuid,
    pub org: String,
    pub endpoint_id: Uuid,
    pub event_id: String,
    pub event_type: String,
    /// Position in the endpoint's history (1, 2, ...): pages are ranges of it.
    pub seq: u64,
    pub status: DeliveryStatus,
    pub attempt_count: u32,
    pub last_status_code: Option<u16>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Set by a manual retry until the sender has made that attempt, so a duplicate
    /// message for the same request makes no second attempt.
    pub manual_retry: Option<Uuid>,
    /// Held by the sender between claiming an attempt and recording it.
    pub lease: Option<Lease>,
}

/// A sender's claim on the next attempt of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub id: Uuid,
    pub until: DateTime<Utc>,
}

/// One HTTP try.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub attempt_number: u32,
    pub trigger: Trigger,
    #[serde(with = "super::time::rfc3339_millis")]
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub status_code: Option<u16>,
    pub response_body: String,
    pub error: Option<AttemptError>,
    pub succeeded: bool,
}

/// What recording an attempt does to its delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl Delivery {
    /// The id of `event`'s delivery to an endpoint: a UUID v7 of the event's time whose
    /// other bits come from a hash of (org, event, endpoint), so a fan-out that is run
    /// again writes the same deliveries instead of new ones.
    pub fn id_for(event: &Event, endpoint_id: Uuid) -> Uuid {
        let digest = Sha256::new()
            .chain_update(event.org.as_bytes())
            .chain_update([0])
            .chain_update(event.id.as_bytes())
            .chain_update([0])
            .chain_update(endpoint_id.as_bytes())
            .finalize();
        let mut bits = [0u8; 10];
        bits.copy_from_slice(&digest[..10]);
        let millis = u64::try_from(event.created_at.timestamp_millis()).unwrap_or(0);
        uuid::Builder::from_unix_timestamp_millis(millis, &bits).into_uuid()
    }

    /// A new delivery of `event` to an endpoint: pending, or paused if the endpoint is
    /// inactive.
    pub fn new(event: &Event, endpoint_id: Uuid, seq: u64, active: bool) -> Self {
        Self {
            id: Self::id_for(event, endpoint_id),
            org: event.org.clone(),
            endpoint_id,
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            seq,
            status: if active {
                DeliveryStatus::Pending
            } else {
                DeliveryStatus::Paused
            },
            attempt_count: 0,
            last_status_code: None,
            created_at: event.created_at,
            updated_at: event.created_at,
            next_attempt_at: active.then_some(event.created_at),
            manual_retry: None,
            lease: None,
        }
    }

    /// Apply a recorded attempt (the rules every store follows).
    pub fn apply_attempt(
        &mut self,
        attempt: &Attempt,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) {
        self.attempt_count = attempt.attempt_number;
        self.last_status_code = attempt.status_code;
        self.status = outcome.status;
        self.next_attempt_at = outcome.next_attempt_at;
        self.updated_at = now;
        self.lease = None;
    }
}

/// The sequence-number range `(lo, hi)` holding page `page` (from 1) of `per_page`,
/// newest first, for an endpoint whose deliveries run from `bottom` (oldest still
/// stored) to `top` (newest); `None` past the end. Both stores page with this, so each
/// page costs one ranged read, whatever its number.
pub fn page_range(bottom: u64, top: u64, page: u32, per_page: u32) -> Option<(u64, u64)> {
    let skip = u64::from(page.checked_sub(1)?) * u64::from(per_page);
    let hi = top.checked_sub(skip)?;
    if hi < bottom || hi == 0 || per_page == 0 {
        return None;
    }
    let lo = hi
        .saturating_sub(u64::from(per_page) - 1)
        .max(bottom)
        .max(1);
    Some((lo, hi))
}

/// Deliveries still stored: the numbers from `bottom` to `top`.
pub fn page_total(bottom: Option<u64>, top: u64) -> u64 {
    bottom.map_or(0, |b| top.saturating_sub(b) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_are_v7_and_stable_per_event_and_endpoint() {
        let event = Event {
            org: "acme".into(),
            id: "evt_1".into(),
            event_type: "a.b".into(),
            created_at: crate::domain::now(),
            payload: "{}".into(),
            targets: vec![],
            fanned_out: false,
        };
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let id = Delivery::id_for(&event, a);
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(id, Delivery::id_for(&event, a));
        assert_ne!(id, Delivery::id_for(&event, b));
        let other = Event {
            id: "evt_2".into(),
            ..event.clone()
        };
        assert_ne!(id, Delivery::id_for(&other, a));
        let millis = u64::try_from(event.created_at.timestamp_millis()).expect("after 1970");
        assert_eq!(
            id.get_timestamp()
                .map(|t| t.to_unix().0 * 1000 + u64::from(t.to_unix().1 / 1_000_000)),
            Some(millis)
        );
    }

    #[test]
    fn pages_are_seq_ranges_newest_first() {
        assert_eq!(page_range(1, 45, 1, 20), Some((26, 45)));
        assert_eq!(page_range(1, 45, 2, 20), Some((6, 25)));
        assert_eq!(page_range(1, 45, 3, 20), Some((1, 5)));
        assert_eq!(page_range(1, 45, 4, 20), None);
        assert_eq!(
            page_range(10, 45, 2, 20),
            Some((10, 25)),
            "expired ones drop out"
        );
        assert_eq!(page_range(1, 0, 1, 20), None);
        assert_eq!(page_range(1, 5, 0, 20), None);
        assert_eq!(page_range(1, 5, u32::MAX, 100), None);
        assert_eq!(page_total(Some(10), 45), 36);
        assert_eq!(page_total(None, 45), 0);
    }
}
