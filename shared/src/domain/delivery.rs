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
    /// Until when the publish that is writing the deliveries holds the fan-out. While it
    /// does, a repeat with the same id waits instead of writing too (two writers would
    /// each take a sequence number for the same delivery); once it has passed, the
    /// writer is presumed dead and a repeat takes the fan-out over.
    pub fan_out_until: Option<DateTime<Utc>>,
}

impl Event {
    pub fn delivery_count(&self) -> u32 {
        u32::try_from(self.targets.len()).unwrap_or(u32::MAX)
    }

    /// Whether a publish of `event_type` with `data` is this event again (same type, and
    /// the same JSON value: key order and number spelling do not matter).
    pub fn has_content(&self, event_type: &str, data: &serde_json::Value) -> bool {
        #[derive(Deserialize)]
        struct Stored {
            data: serde_json::Value,
        }
        self.event_type == event_type
            && serde_json::from_str::<Stored>(&self.payload).is_ok_and(|s| &s.data == data)
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
    /// An open manual retry request: set by the retry route, used up when the sender
    /// records the manual attempt it asked for, so a duplicate message for the same
    /// request makes no second attempt. It never changes `status`: the recorded outcome
    /// stands until the retry has happened.
    pub manual_retry: Option<Uuid>,
    /// Held until its endpoint is resumed (it is inactive): automatic attempts (`status`
    /// is then `paused`) or an open manual retry wait for the resume.
    pub held: bool,
    /// Held by the sender between claiming an attempt and recording it.
    pub lease: Option<Lease>,
}

/// What a delivery waits for: the index a store keeps it in follows from this alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// An attempt (automatic, or an open manual retry) due at this time.
    Due(DateTime<Utc>),
    /// Its endpoint's resume.
    Held,
    /// Nothing: finished, with no manual retry open.
    Idle,
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
            held: !active,
            lease: None,
        }
    }

    pub fn waiting(&self) -> Waiting {
        if self.held {
            return Waiting::Held;
        }
        match self.next_attempt_at {
            Some(at) if self.status.is_due() || self.manual_retry.is_some() => Waiting::Due(at),
            _ => Waiting::Idle,
        }
    }

    /// The delivery once `attempt` is recorded (the rules every store follows).
    /// `open_request` is the manual retry request stored at that moment, which may be
    /// newer than the one this (manual) attempt was claimed for: the attempt uses up only
    /// its own, and a newer one keeps the delivery due at once.
    pub fn recorded(
        &self,
        attempt: &Attempt,
        outcome: &AttemptOutcome,
        open_request: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Delivery {
        let used = match attempt.trigger {
            Trigger::Manual => self.manual_retry,
            Trigger::Automatic => None,
        };
        let manual_retry = open_request.filter(|r| Some(*r) != used);
        let held = outcome.status == DeliveryStatus::Paused;
        Delivery {
            attempt_count: attempt.attempt_number,
            last_status_code: attempt.status_code,
            status: outcome.status,
            next_attempt_at: match manual_retry {
                Some(_) if !held => Some(now),
                _ => outcome.next_attempt_at,
            },
            manual_retry,
            held,
            updated_at: now,
            lease: None,
            ..self.clone()
        }
    }

    /// The delivery parked because its endpoint is inactive. Pending automatic work
    /// shows as `paused`; a finished delivery with a manual retry open keeps its
    /// outcome (the request stays open until the resume).
    pub fn parked(&self, now: DateTime<Utc>) -> Delivery {
        let status = if self.status.is_due() {
            DeliveryStatus::Paused
        } else {
            self.status
        };
        Delivery {
            next_attempt_at: None,
            held: true,
            lease: None,
            ..self.with_status(status, now)
        }
    }

    /// The delivery released by its endpoint's resume: due at once, `paused` back to
    /// `pending`.
    pub fn resumed(&self, now: DateTime<Utc>) -> Delivery {
        let status = if self.status == DeliveryStatus::Paused {
            DeliveryStatus::Pending
        } else {
            self.status
        };
        Delivery {
            next_attempt_at: Some(now),
            held: false,
            ..self.with_status(status, now)
        }
    }

    /// A manual retry requested: due at once (unless a resume must come first, which
    /// the sender finds out), its outcome so far untouched.
    pub fn retry_requested(&self, request: Uuid, now: DateTime<Utc>) -> Delivery {
        Delivery {
            manual_retry: Some(request),
            next_attempt_at: Some(now),
            held: false,
            ..self.clone()
        }
    }

    /// `updated_at` moves only when what the API shows of the outcome does.
    fn with_status(&self, status: DeliveryStatus, now: DateTime<Utc>) -> Delivery {
        Delivery {
            status,
            updated_at: if status == self.status {
                self.updated_at
            } else {
                now
            },
            ..self.clone()
        }
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
            fan_out_until: None,
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
    fn content_is_compared_as_json_values() {
        let event = Event {
            org: "acme".into(),
            id: "evt_1".into(),
            event_type: "a.b".into(),
            created_at: crate::domain::now(),
            payload: r#"{"id":"evt_1","type":"a.b","data":{"x":1.50,"y":[1,"z"]}}"#.into(),
            targets: vec![],
            fanned_out: true,
            fan_out_until: None,
        };
        let same: serde_json::Value =
            serde_json::from_str(r#"{"y":[1,"z"],"x":1.5}"#).expect("json");
        assert!(event.has_content("a.b", &same));
        assert!(!event.has_content("a.c", &same));
        let other: serde_json::Value =
            serde_json::from_str(r#"{"y":[1,"z"],"x":2}"#).expect("json");
        assert!(!event.has_content("a.b", &other));
        assert!(!event.has_content("a.b", &serde_json::json!({})));
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
