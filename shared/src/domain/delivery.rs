//! Events, deliveries and attempts: what is stored for every webhook sent.
//!
//! A delivery lives in its endpoint's history at the next number of that history (its
//! `seq`), and its public id encodes where: the endpoint's number and the seq (see
//! [`DeliveryKey`]). So one read finds a delivery by id, and one ranged read finds any
//! page of an endpoint's history, with no index to keep up to date on every write.

use super::AttemptError;
use super::numbers::{DeliverySeq, EndpointNumber};
use super::org::OrgSlug;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A published event, stored once: `payload` is the exact envelope sent on every attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub org: OrgSlug,
    pub id: String,
    pub event_type: String,
    pub created_at: DateTime<Utc>,
    /// `{"id","type","created_at","org","data"}`, serialised once at publish time.
    pub payload: String,
    /// The endpoints the first publish chose; a repeat answers with their count.
    pub targets: Vec<Target>,
    /// Until when the publish that is writing the deliveries holds the fan-out. While it
    /// does, a repeat with the same id waits instead of writing too (two writers would
    /// each take a sequence number for the same delivery); once it has passed, the
    /// writer is presumed gone and a repeat completes whatever it left.
    pub fan_out_until: Option<DateTime<Utc>>,
    /// The writer that last took the hold over or gave it up (none while the first
    /// publish holds it): its own hold writes succeed again when repeated, so a write
    /// the store applied but reported failed can be sent again.
    pub fan_out_holder: Option<Uuid>,
}

/// An endpoint an event goes to, as the publish saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub endpoint_id: Uuid,
    /// The endpoint's number, which keys its delivery history.
    pub endpoint_number: EndpointNumber,
    /// The endpoint's last sequence number when the publish read it: the event's
    /// delivery there is numbered after it, so a repeat looks for it from there on.
    pub seq_floor: DeliverySeq,
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
    /// As the API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Paused => "paused",
        }
    }

    /// Whether a delivery in this state waits for an automatic attempt.
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

impl Trigger {
    /// As the API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Automatic => "automatic",
            Trigger::Manual => "manual",
        }
    }
}

/// Where a delivery is stored: its endpoint's number and its place in that endpoint's
/// history. Its id encodes both (see [`DeliveryKey::id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryKey {
    pub endpoint_number: EndpointNumber,
    pub seq: DeliverySeq,
}

/// Seqs fit in the 42 bits an id leaves them: four trillion deliveries per endpoint.
const SEQ_BITS: u32 = 42;
const SEQ_MASK: u128 = (1 << SEQ_BITS) - 1;
/// The 74 bits of a UUID v7 after its timestamp, version and variant.
const RAND_B_BITS: u32 = 62;

impl DeliveryKey {
    /// The public id: a UUID v7 whose timestamp is the delivery's creation (so ids sort
    /// by time like every other id here) and whose other 74 bits are the endpoint number
    /// (32) and the seq (42). Endpoint numbers are unique across the service, so ids are
    /// too, which receivers rely on to de-duplicate (`webhook-id`).
    pub fn id(self, created_at: DateTime<Utc>) -> Uuid {
        let millis =
            u128::from(u64::try_from(created_at.timestamp_millis()).unwrap_or(0)) & ((1 << 48) - 1);
        let payload =
            (u128::from(self.endpoint_number.0) << SEQ_BITS) | (u128::from(self.seq.0) & SEQ_MASK);
        let rand_a = payload >> RAND_B_BITS;
        let rand_b = payload & ((1 << RAND_B_BITS) - 1);
        Uuid::from_u128((millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b)
    }

    /// The key an id names, if it is an id of this shape.
    pub fn from_id(id: Uuid) -> Option<Self> {
        let bits = id.as_u128();
        if id.get_version_num() != 7 || (bits >> 62) & 0b11 != 0b10 {
            return None;
        }
        let rand_a = (bits >> 64) & 0xfff;
        let rand_b = bits & ((1 << RAND_B_BITS) - 1);
        let payload = (rand_a << RAND_B_BITS) | rand_b;
        Some(Self {
            endpoint_number: EndpointNumber(u32::try_from(payload >> SEQ_BITS).ok()?),
            seq: DeliverySeq(u64::try_from(payload & SEQ_MASK).ok()?),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// `key.id(created_at)`.
    pub id: Uuid,
    pub key: DeliveryKey,
    pub org: OrgSlug,
    pub endpoint_id: Uuid,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    /// Every attempt, oldest first; only the latest keeps its response body.
    pub attempts: Vec<Attempt>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// An open manual retry request: set by the retry route, used up when its attempt is
    /// recorded, so a duplicate message for the same request makes no second record. It
    /// never changes `status`: the recorded outcome stands until the retry has happened.
    pub manual_retry: Option<Uuid>,
    /// Held until its endpoint is resumed (it is inactive): automatic attempts (`status`
    /// is then `paused`) or a manual retry wait for the resume.
    pub held: bool,
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

/// How much of a response body is kept, for the latest attempt only: enough to see what
/// a receiver said (an error page's title, a JSON error), small enough that a delivery
/// stays one write unit whatever the receiver answers.
pub const KEPT_BODY_BYTES: usize = 256;

impl Attempt {
    /// `body` cut to [`KEPT_BODY_BYTES`] at a character boundary.
    pub fn kept_body(body: &str) -> String {
        let mut end = body.len().min(KEPT_BODY_BYTES);
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        body[..end].to_owned()
    }
}

/// What recording an attempt does to its delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// What the stored delivery must be for an attempt to be recorded (or a delivery
/// held): this is what makes one try one record under duplicate messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Automatic attempt `n`: `n - 1` automatic attempts are recorded (for `n = 1` the
    /// delivery may not be stored yet: the publish writes it just after enqueueing).
    /// Manual attempts recorded meanwhile do not count: a manual retry that ends first
    /// does not make an automatic attempt in flight unrecordable.
    Attempt(u32),
    /// A manual retry: its request is still open, and this attempt uses it up.
    Request(Uuid),
}

impl Delivery {
    /// A new delivery of `event` to `target` at `seq`: pending, or paused and held if
    /// the endpoint is inactive.
    pub fn new(event: &Event, target: &Target, seq: DeliverySeq, active: bool) -> Self {
        let key = DeliveryKey {
            endpoint_number: target.endpoint_number,
            seq,
        };
        Self {
            id: key.id(event.created_at),
            key,
            org: event.org.clone(),
            endpoint_id: target.endpoint_id,
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            status: if active {
                DeliveryStatus::Pending
            } else {
                DeliveryStatus::Paused
            },
            attempts: Vec::new(),
            created_at: event.created_at,
            updated_at: event.created_at,
            next_attempt_at: active.then_some(event.created_at),
            manual_retry: None,
            held: !active,
        }
    }

    pub fn attempt_count(&self) -> u32 {
        u32::try_from(self.attempts.len()).unwrap_or(u32::MAX)
    }

    pub fn last_status_code(&self) -> Option<u16> {
        self.attempts.last().and_then(|a| a.status_code)
    }

    /// How many of its attempts were automatic: the schedule's position. Manual retries
    /// are attempts too, but they leave the schedule where it was.
    pub fn automatic_count(&self) -> u32 {
        let automatic = self
            .attempts
            .iter()
            .filter(|a| a.trigger == Trigger::Automatic)
            .count();
        u32::try_from(automatic).unwrap_or(u32::MAX)
    }

    /// Whether the delivery is as `expect` requires.
    pub fn meets(&self, expect: Expect) -> bool {
        match expect {
            Expect::Attempt(n) => self.automatic_count() + 1 == n,
            Expect::Request(request) => self.manual_retry == Some(request),
        }
    }

    /// Where a manual retry leaves this delivery: succeeded, or paused on 410 Gone; a
    /// failure starts no schedule of its own: a delivery with automatic attempts still to
    /// come keeps waiting for them, any other has failed.
    pub fn manual_outcome(&self, result: &super::PostOutcome) -> AttemptOutcome {
        let (status, next_attempt_at) = if result.error.is_none() {
            (DeliveryStatus::Succeeded, None)
        } else if result.status == Some(410) {
            (DeliveryStatus::Paused, None)
        } else if self.status.is_due() && self.next_attempt_at.is_some() {
            (DeliveryStatus::Retrying, self.next_attempt_at)
        } else {
            (DeliveryStatus::Failed, None)
        };
        AttemptOutcome {
            status,
            next_attempt_at,
        }
    }

    /// Whether automatic attempt `n` should still be made: it is the next one, and the
    /// delivery is still waiting for automatic attempts (a manual retry may have
    /// finished it meanwhile, or its endpoint been paused).
    pub fn awaits(&self, n: u32) -> bool {
        self.meets(Expect::Attempt(n)) && self.status.is_due() && !self.held
    }

    /// The delivery once `attempt` is recorded (the rules every store follows): the
    /// attempt appended (older attempts give up their bodies), a manual retry's request
    /// used up, the outcome applied. An attempt to a gone endpoint (410) holds it.
    pub fn recorded(
        &self,
        attempt: &Attempt,
        outcome: &AttemptOutcome,
        expect: Expect,
        now: DateTime<Utc>,
    ) -> Delivery {
        let mut attempts = self.attempts.clone();
        for older in &mut attempts {
            older.response_body.clear();
        }
        attempts.push(Attempt {
            attempt_number: self.attempt_count() + 1,
            response_body: Attempt::kept_body(&attempt.response_body),
            ..attempt.clone()
        });
        Delivery {
            attempts,
            status: outcome.status,
            next_attempt_at: outcome.next_attempt_at,
            manual_retry: match expect {
                Expect::Request(_) => None,
                Expect::Attempt(_) => self.manual_retry,
            },
            held: outcome.status == DeliveryStatus::Paused,
            updated_at: now,
            ..self.clone()
        }
    }

    /// The delivery held because its endpoint is inactive. Pending automatic work
    /// shows as `paused`; a finished delivery with a manual retry open keeps its
    /// outcome (the request stays open until the resume).
    pub fn on_hold(&self, now: DateTime<Utc>) -> Delivery {
        let status = if self.status.is_due() {
            DeliveryStatus::Paused
        } else {
            self.status
        };
        Delivery {
            next_attempt_at: None,
            held: true,
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

    /// A manual retry requested: its outcome so far untouched; the request's job is what
    /// makes the attempt (or, if the endpoint is inactive, holds it for the resume).
    pub fn retry_requested(&self, request: Uuid) -> Delivery {
        Delivery {
            manual_retry: Some(request),
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
pub fn page_range(
    bottom: DeliverySeq,
    top: DeliverySeq,
    page: u32,
    per_page: u32,
) -> Option<(DeliverySeq, DeliverySeq)> {
    let (bottom, top) = (bottom.0, top.0);
    let skip = u64::from(page.checked_sub(1)?) * u64::from(per_page);
    let hi = top.checked_sub(skip)?;
    if hi < bottom || hi == 0 || per_page == 0 {
        return None;
    }
    let lo = hi
        .saturating_sub(u64::from(per_page) - 1)
        .max(bottom)
        .max(1);
    Some((DeliverySeq(lo), DeliverySeq(hi)))
}

/// Deliveries still stored: the numbers from `bottom` to `top`.
pub fn page_total(bottom: Option<DeliverySeq>, top: DeliverySeq) -> u64 {
    bottom.map_or(0, |b| top.0.saturating_sub(b.0) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::org::acme;

    #[test]
    fn ids_encode_the_key_and_the_time() {
        let at = crate::domain::now();
        for key in [
            DeliveryKey {
                endpoint_number: EndpointNumber(1),
                seq: DeliverySeq(1),
            },
            DeliveryKey {
                endpoint_number: EndpointNumber(u32::MAX),
                seq: DeliverySeq((1 << SEQ_BITS) - 1),
            },
            DeliveryKey {
                endpoint_number: EndpointNumber(4242),
                seq: DeliverySeq(987_654_321),
            },
        ] {
            let id = key.id(at);
            assert_eq!(id.get_version_num(), 7, "{id}");
            assert_eq!(DeliveryKey::from_id(id), Some(key), "{id}");
            let millis = u64::try_from(at.timestamp_millis()).expect("after 1970");
            assert_eq!(
                id.get_timestamp()
                    .map(|t| t.to_unix().0 * 1000 + u64::from(t.to_unix().1 / 1_000_000)),
                Some(millis)
            );
        }
        let a = DeliveryKey {
            endpoint_number: EndpointNumber(7),
            seq: DeliverySeq(1),
        };
        let b = DeliveryKey {
            endpoint_number: EndpointNumber(7),
            seq: DeliverySeq(2),
        };
        assert_ne!(a.id(at), b.id(at));
        let v4 = uuid::Builder::from_random_bytes([0x5a; 16]).into_uuid();
        assert_eq!(DeliveryKey::from_id(v4), None, "not a v7");
    }

    fn sample() -> Delivery {
        let event = Event {
            org: acme(),
            id: "evt_1".into(),
            event_type: "a.b".into(),
            created_at: crate::domain::now(),
            payload: "{}".into(),
            targets: vec![],
            fan_out_until: None,
            fan_out_holder: None,
        };
        let target = Target {
            endpoint_id: Uuid::now_v7(),
            endpoint_number: EndpointNumber(3),
            seq_floor: DeliverySeq(0),
        };
        Delivery::new(&event, &target, DeliverySeq(1), true)
    }

    fn attempt(code: u16, body: &str) -> Attempt {
        Attempt {
            attempt_number: 0,
            trigger: Trigger::Automatic,
            started_at: crate::domain::now(),
            duration_ms: 5,
            status_code: Some(code),
            response_body: body.into(),
            error: None,
            succeeded: code < 300,
        }
    }

    #[test]
    fn recording_numbers_attempts_and_keeps_one_body() {
        let d = sample();
        assert!(d.meets(Expect::Attempt(1)));
        let retry = AttemptOutcome {
            status: DeliveryStatus::Retrying,
            next_attempt_at: Some(d.created_at),
        };
        let d = d.recorded(
            &attempt(500, &"e".repeat(1000)),
            &retry,
            Expect::Attempt(1),
            d.created_at,
        );
        assert_eq!(d.attempt_count(), 1);
        assert_eq!(d.attempts[0].attempt_number, 1);
        assert_eq!(d.attempts[0].response_body.len(), KEPT_BODY_BYTES);
        assert_eq!(d.last_status_code(), Some(500));
        assert!(d.meets(Expect::Attempt(2)) && !d.meets(Expect::Attempt(1)));

        let request = Uuid::now_v7();
        let d = d.retry_requested(request);
        assert_eq!(d.status, DeliveryStatus::Retrying, "outcome untouched");
        assert!(d.meets(Expect::Request(request)));
        let done = AttemptOutcome {
            status: DeliveryStatus::Succeeded,
            next_attempt_at: None,
        };
        let mut manual = attempt(200, "ok");
        manual.trigger = Trigger::Manual;
        let d = d.recorded(&manual, &done, Expect::Request(request), d.created_at);
        assert_eq!(d.attempts[1].attempt_number, 2);
        assert_eq!(d.attempts[1].trigger, Trigger::Manual);
        assert_eq!(
            d.attempts[0].response_body, "",
            "only the latest keeps a body"
        );
        assert_eq!(d.manual_retry, None, "the request is used up");
        assert!(!d.meets(Expect::Request(request)));
    }

    #[test]
    fn kept_bodies_end_on_a_character() {
        let body = "é".repeat(200);
        let kept = Attempt::kept_body(&body);
        assert!(kept.len() <= KEPT_BODY_BYTES && kept.len() >= KEPT_BODY_BYTES - 1);
        assert!(body.starts_with(&kept));
    }

    #[test]
    fn holding_and_resuming() {
        let d = sample();
        let held_delivery = d.on_hold(d.created_at);
        assert_eq!(
            (held_delivery.status, held_delivery.held),
            (DeliveryStatus::Paused, true)
        );
        let back = held_delivery.resumed(d.created_at);
        assert_eq!((back.status, back.held), (DeliveryStatus::Pending, false));
    }

    #[test]
    fn pages_are_seq_ranges_newest_first() {
        let range = |bottom, top, page, per_page| {
            page_range(DeliverySeq(bottom), DeliverySeq(top), page, per_page)
                .map(|(lo, hi)| (lo.0, hi.0))
        };
        assert_eq!(range(1, 45, 1, 20), Some((26, 45)));
        assert_eq!(range(1, 45, 2, 20), Some((6, 25)));
        assert_eq!(range(1, 45, 3, 20), Some((1, 5)));
        assert_eq!(range(1, 45, 4, 20), None);
        assert_eq!(
            range(10, 45, 2, 20),
            Some((10, 25)),
            "expired ones drop out"
        );
        assert_eq!(range(1, 0, 1, 20), None);
        assert_eq!(range(1, 5, 0, 20), None);
        assert_eq!(range(1, 5, u32::MAX, 100), None);
        assert_eq!(page_total(Some(DeliverySeq(10)), DeliverySeq(45)), 36);
        assert_eq!(page_total(None, DeliverySeq(45)), 0);
    }
}
