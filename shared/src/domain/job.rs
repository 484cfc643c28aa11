//! Messages on the delivery queue: versioned and tagged, so old messages in flight stay
//! readable after a deploy.

use super::delivery::Trigger;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// Make the next attempt of a delivery. `attempt` is the attempt number this message
    /// is for (automatic), so a duplicate message finds it already made. A manual retry
    /// carries the id of its request instead. A wait longer than the queue's longest
    /// delay is made in hops: the message comes back early and is sent on again until
    /// `not_before`.
    Deliver {
        v: u8,
        delivery_id: Uuid,
        attempt: u32,
        trigger: Trigger,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        manual_retry: Option<Uuid>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_before: Option<DateTime<Utc>>,
    },
    /// Re-queue, a chunk at a time, the paused deliveries of a resumed endpoint.
    ResumeEndpoint {
        v: u8,
        org: String,
        endpoint_id: Uuid,
    },
    /// Delete, a chunk at a time, the deliveries and attempts of a deleted endpoint.
    PurgeEndpoint {
        v: u8,
        org: String,
        endpoint_id: Uuid,
    },
}

pub const JOB_VERSION: u8 = 1;

impl Job {
    pub fn automatic(delivery_id: Uuid, attempt: u32, not_before: Option<DateTime<Utc>>) -> Self {
        Job::Deliver {
            v: JOB_VERSION,
            delivery_id,
            attempt,
            trigger: Trigger::Automatic,
            manual_retry: None,
            not_before,
        }
    }

    pub fn manual(delivery_id: Uuid, request: Uuid) -> Self {
        Job::Deliver {
            v: JOB_VERSION,
            delivery_id,
            attempt: 0,
            trigger: Trigger::Manual,
            manual_retry: Some(request),
            not_before: None,
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

    #[test]
    fn round_trips_and_wire_shape() {
        let id = Uuid::now_v7();
        let job = Job::automatic(id, 3, Some(crate::domain::now()));
        let json = job.to_json();
        assert!(
            json.contains(r#""job":"deliver""#) && json.contains(r#""attempt":3"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Job>(&json).expect("parse"), job);
        let purge = Job::PurgeEndpoint {
            v: 1,
            org: "acme".into(),
            endpoint_id: id,
        };
        assert_eq!(
            serde_json::from_str::<Job>(&purge.to_json()).expect("parse"),
            purge
        );
        assert!(serde_json::from_str::<Job>(r#"{"job":"explode"}"#).is_err());
    }
}
