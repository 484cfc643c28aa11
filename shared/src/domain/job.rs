//! Messages on the delivery queue: versioned and tagged, so messages in flight during a
//! deploy are recognised (and an unknown shape goes to the dead-letter queue).

use super::delivery::Trigger;
use super::numbers::EndpointNumber;
use super::org::OrgSlug;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a delivery job says about its event: enough to sign and label the request, and
/// for the sender to write the delivery itself should the publish have died between
/// enqueueing and writing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRef {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(with = "super::time::rfc3339_millis")]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// Make an attempt of a delivery: automatic attempt number `attempt`, or the manual
    /// retry whose request id is `manual_retry` (then `attempt` is 0). A duplicate
    /// message finds its attempt recorded and records nothing.
    Deliver {
        v: u8,
        org: OrgSlug,
        endpoint_id: Uuid,
        delivery_id: Uuid,
        attempt: u32,
        trigger: Trigger,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        manual_retry: Option<Uuid>,
        event: EventRef,
        /// The envelope to send, when it is small enough to travel in the message (so no
        /// read of the event is needed); otherwise the sender reads the event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<String>,
    },
    /// Re-queue, a chunk at a time, the held deliveries of a resumed endpoint.
    ResumeEndpoint {
        v: u8,
        org: OrgSlug,
        endpoint_id: Uuid,
    },
    /// Re-send, a chunk at a time, the failed deliveries a recovery names.
    RecoverEndpoint {
        v: u8,
        org: OrgSlug,
        recovery_id: Uuid,
    },
    /// Delete, a chunk at a time, the deliveries of a deleted endpoint.
    PurgeEndpoint {
        v: u8,
        org: OrgSlug,
        endpoint_id: Uuid,
        endpoint_number: EndpointNumber,
    },
}

pub const JOB_VERSION: u8 = 2;

/// Envelopes up to this size travel in the message (one SQS request is 64 KiB).
pub const INLINE_PAYLOAD_BYTES: usize = 60 * 1024;

/// A delivery job's identity and its event, without the attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryJob {
    pub org: OrgSlug,
    pub endpoint_id: Uuid,
    pub delivery_id: Uuid,
    pub event: EventRef,
    pub payload: Option<String>,
}

impl DeliveryJob {
    /// The payload is kept only if it can travel in the message.
    pub fn new(
        org: &OrgSlug,
        endpoint_id: Uuid,
        delivery_id: Uuid,
        event: EventRef,
        payload: Option<&str>,
    ) -> Self {
        Self {
            org: org.to_owned(),
            endpoint_id,
            delivery_id,
            event,
            payload: payload
                .filter(|p| p.len() <= INLINE_PAYLOAD_BYTES)
                .map(str::to_owned),
        }
    }

    pub fn automatic(self, attempt: u32) -> Job {
        self.job(attempt, Trigger::Automatic, None)
    }

    pub fn manual(self, request: Uuid) -> Job {
        self.job(0, Trigger::Manual, Some(request))
    }

    fn job(self, attempt: u32, trigger: Trigger, manual_retry: Option<Uuid>) -> Job {
        Job::Deliver {
            v: JOB_VERSION,
            org: self.org,
            endpoint_id: self.endpoint_id,
            delivery_id: self.delivery_id,
            attempt,
            trigger,
            manual_retry,
            event: self.event,
            payload: self.payload,
        }
    }
}

/// An automatic attempt due later than the queue's longest delay: kept in the store's
/// due list, which the scheduler reads every minute, instead of in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledAttempt {
    pub at: DateTime<Utc>,
    pub attempt: u32,
    /// Without the payload: the sender reads the event when the attempt is due.
    pub job: DeliveryJob,
}

impl ScheduledAttempt {
    pub fn into_job(self) -> Job {
        self.job.automatic(self.attempt)
    }
}

impl Job {
    /// The organisation the job works for: every job has one, and the SQS adapter sends
    /// it as the message group (fair queues share the queue between organisations).
    pub fn org(&self) -> &OrgSlug {
        match self {
            Job::Deliver { org, .. }
            | Job::ResumeEndpoint { org, .. }
            | Job::RecoverEndpoint { org, .. }
            | Job::PurgeEndpoint { org, .. } => org,
        }
    }

    pub fn to_json(&self) -> String {
        // A plain enum of strings, ids and numbers always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::org::acme;

    fn event() -> EventRef {
        EventRef {
            id: "evt_1".into(),
            event_type: "a.b".into(),
            created_at: crate::domain::now(),
        }
    }

    #[test]
    fn round_trips_and_wire_shape() {
        let id = Uuid::now_v7();
        let job = DeliveryJob::new(&acme(), id, id, event(), Some("{}")).automatic(3);
        let json = job.to_json();
        assert!(
            json.contains(r#""job":"deliver""#) && json.contains(r#""attempt":3"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Job>(&json).expect("parse"), job);
        let purge = Job::PurgeEndpoint {
            v: JOB_VERSION,
            org: acme(),
            endpoint_id: id,
            endpoint_number: EndpointNumber(4),
        };
        assert_eq!(
            serde_json::from_str::<Job>(&purge.to_json()).expect("parse"),
            purge
        );
        assert!(serde_json::from_str::<Job>(r#"{"job":"explode"}"#).is_err());
    }

    #[test]
    fn large_payloads_stay_out_of_the_message() {
        let id = Uuid::now_v7();
        let big = "x".repeat(INLINE_PAYLOAD_BYTES + 1);
        let job = DeliveryJob::new(&acme(), id, id, event(), Some(&big));
        assert_eq!(job.payload, None);
        let small = DeliveryJob::new(&acme(), id, id, event(), Some("{}"));
        assert_eq!(small.payload.as_deref(), Some("{}"));
    }
}
