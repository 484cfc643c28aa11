//! A due-list entry's item.

use super::{from_millis, millis};
use crate::adapters::dynamo::table_keys;
use crate::domain::OrgSlug;
use crate::domain::{DeliveryJob, DeliveryKey, EventRef, ScheduledAttempt};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An automatic attempt due in a given minute.
#[derive(Serialize, Deserialize)]
pub struct ScheduledItem {
    pk: String,
    sk: String,
    org: OrgSlug,
    ep: Uuid,
    id: Uuid,
    ev: String,
    ty: String,
    ca: i64,
    n: u32,
    due: i64,
    expires_at: i64,
}

/// `YYYYMMDDHHMM`
pub fn minute_key(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d%H%M").to_string()
}

impl ScheduledItem {
    pub fn new(a: &ScheduledAttempt, key: DeliveryKey, expires_at: i64) -> Self {
        Self {
            pk: table_keys::due_pk(&minute_key(a.at), key.seq.0 % table_keys::DUE_SHARDS),
            sk: format!(
                "{}#{}#{}",
                key.endpoint_number,
                table_keys::seq_sk(key.seq),
                a.attempt
            ),
            org: a.job.org.clone(),
            ep: a.job.endpoint_id,
            id: a.job.delivery_id,
            ev: a.job.event.id.clone(),
            ty: a.job.event.event_type.clone(),
            ca: millis(a.job.event.created_at),
            n: a.attempt,
            due: millis(a.at),
            expires_at,
        }
    }
}

impl TryFrom<ScheduledItem> for ScheduledAttempt {
    type Error = String;
    fn try_from(i: ScheduledItem) -> Result<Self, String> {
        Ok(Self {
            at: from_millis(i.due)?,
            attempt: i.n,
            job: DeliveryJob {
                org: i.org,
                endpoint_id: i.ep,
                delivery_id: i.id,
                event: EventRef {
                    id: i.ev,
                    event_type: i.ty,
                    created_at: from_millis(i.ca)?,
                },
                payload: None,
            },
        })
    }
}
