//! A recovery job's item.

use super::{from_millis, millis};
use crate::adapters::dynamo::table_keys;
use crate::domain::OrgSlug;
use crate::domain::recovery::{FailedPosition, Recovery, RecoveryStatus};
use crate::domain::{DeliverySeq, EndpointNumber};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A recovery job's record.
#[derive(Serialize, Deserialize)]
pub struct RecoveryItem {
    pk: String,
    sk: String,
    org: OrgSlug,
    ep: Uuid,
    n: EndpointNumber,
    since: i64,
    until: i64,
    st: String,
    q: u64,
    ca: i64,
    /// When it last moved; absent on records written before it was kept (then `ca`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ua: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fa: Option<i64>,
    /// The last failed delivery handled: creation time (ms) and seq.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pt: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ps: Option<DeliverySeq>,
    expires_at: i64,
}

impl RecoveryItem {
    pub fn new(r: &Recovery, expires_at: i64) -> Self {
        Self {
            pk: table_keys::recovery_pk(r.id),
            sk: table_keys::RECOVERY_SK.to_owned(),
            org: r.org.clone(),
            ep: r.endpoint_id,
            n: r.endpoint_number,
            since: millis(r.since),
            until: millis(r.until),
            st: r.status.as_str().to_owned(),
            q: r.queued,
            ca: millis(r.created_at),
            ua: Some(millis(r.updated_at)),
            fa: r.finished_at.map(millis),
            pt: r.position.map(|p| millis(p.created_at)),
            ps: r.position.map(|p| p.seq),
            expires_at,
        }
    }
}

impl TryFrom<RecoveryItem> for Recovery {
    type Error = String;
    fn try_from(i: RecoveryItem) -> Result<Self, String> {
        let id =
            i.pk.strip_prefix("RECOVERY#")
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| format!("recovery item with unexpected key {}", i.pk))?;
        let position = match (i.pt, i.ps) {
            (Some(t), Some(seq)) => Some(FailedPosition {
                created_at: from_millis(t)?,
                seq,
            }),
            _ => None,
        };
        Ok(Self {
            id,
            org: i.org,
            endpoint_id: i.ep,
            endpoint_number: i.n,
            since: from_millis(i.since)?,
            until: from_millis(i.until)?,
            status: if i.st == "done" {
                RecoveryStatus::Done
            } else {
                RecoveryStatus::Running
            },
            queued: i.q,
            created_at: from_millis(i.ca)?,
            updated_at: from_millis(i.ua.unwrap_or(i.ca))?,
            finished_at: i.fa.map(from_millis).transpose()?,
            position,
        })
    }
}
