//! A delivery's item, with its attempts.

use super::{from_millis, millis};
use crate::adapters::dynamo::table_keys;
use crate::domain::OrgSlug;
use crate::domain::{Attempt, AttemptError, AttemptErrorKind, Delivery, DeliveryStatus, Trigger};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A delivery and every attempt of it, in one item of its endpoint's history. Attribute
/// names are short: they count towards the item's size, which every write pays for.
#[derive(Serialize, Deserialize)]
pub struct DeliveryItem {
    pk: String,
    sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2sk: Option<String>,
    org: OrgSlug,
    ep: Uuid,
    ev: String,
    ty: String,
    st: DeliveryStatus,
    /// Absent until the first attempt: a first attempt's write is conditioned on that.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    at: Vec<AttemptItem>,
    /// How many attempts were automatic (the schedule's position), for the conditions
    /// that make each automatic attempt recorded once.
    #[serde(default, skip_serializing_if = "is_zero")]
    aa: u32,
    /// The latest attempt's response body (the only one kept).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    rb: String,
    ca: i64,
    ua: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    na: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mr: Option<Uuid>,
    expires_at: i64,
}

/// An attempt; its number is its place in the list.
#[derive(Serialize, Deserialize)]
pub struct AttemptItem {
    /// `a` automatic, `m` manual.
    t: String,
    s: i64,
    d: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<AttemptErrorKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    m: Option<String>,
}

impl AttemptItem {
    pub fn new(a: &Attempt) -> Self {
        Self {
            t: match a.trigger {
                Trigger::Automatic => "a",
                Trigger::Manual => "m",
            }
            .to_owned(),
            s: millis(a.started_at),
            d: a.duration_ms,
            c: a.status_code,
            k: a.error.as_ref().map(|e| e.kind),
            m: a.error.as_ref().map(|e| e.message.clone()),
        }
    }

    fn into_attempt(self, number: u32, body: String) -> Result<Attempt, String> {
        let error = match (self.k, self.m) {
            (Some(kind), message) => Some(AttemptError::new(kind, message.unwrap_or_default())),
            (None, _) => None,
        };
        Ok(Attempt {
            attempt_number: number,
            trigger: if self.t == "m" {
                Trigger::Manual
            } else {
                Trigger::Automatic
            },
            started_at: from_millis(self.s)?,
            duration_ms: self.d,
            status_code: self.c,
            response_body: body,
            succeeded: error.is_none(),
            error,
        })
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Where a delivery sits in `gsi2`: in its endpoint's held list while held, in its
/// failed list while `failed`, nowhere otherwise.
pub fn index_placement(d: &Delivery) -> (Option<String>, Option<String>) {
    if d.held {
        (
            Some(table_keys::held_gsi2pk(d.key.endpoint_number)),
            Some(table_keys::seq_sk(d.key.seq)),
        )
    } else if d.status == DeliveryStatus::Failed {
        (
            Some(table_keys::failed_gsi2pk(d.key.endpoint_number)),
            Some(table_keys::failed_gsi2sk(millis(d.created_at), d.key.seq)),
        )
    } else {
        (None, None)
    }
}

impl DeliveryItem {
    pub fn new(d: &Delivery, expires_at: i64) -> Self {
        let (gsi2pk, gsi2sk) = index_placement(d);
        Self {
            pk: table_keys::history_pk(d.key.endpoint_number),
            sk: table_keys::seq_sk(d.key.seq),
            gsi2pk,
            gsi2sk,
            org: d.org.clone(),
            ep: d.endpoint_id,
            ev: d.event_id.clone(),
            ty: d.event_type.clone(),
            st: d.status,
            at: d.attempts.iter().map(AttemptItem::new).collect(),
            aa: d.automatic_count(),
            rb: d
                .attempts
                .last()
                .map(|a| a.response_body.clone())
                .unwrap_or_default(),
            ca: millis(d.created_at),
            ua: millis(d.updated_at),
            na: d.next_attempt_at.map(millis),
            mr: d.manual_retry,
            expires_at,
        }
    }
}

impl TryFrom<DeliveryItem> for Delivery {
    type Error = String;
    fn try_from(i: DeliveryItem) -> Result<Self, String> {
        let key = table_keys::delivery_of(&i.pk, &i.sk)
            .ok_or_else(|| format!("delivery item with unexpected keys {} {}", i.pk, i.sk))?;
        let created_at = from_millis(i.ca)?;
        let id = key.id(created_at);
        let count = i.at.len();
        let automatic = i.at.iter().filter(|a| a.t != "m").count();
        if usize::try_from(i.aa).ok() != Some(automatic) {
            return Err(format!(
                "delivery {id}: {automatic} automatic attempts stored, {} counted",
                i.aa
            ));
        }
        let mut body = Some(i.rb);
        let attempts =
            i.at.into_iter()
                .enumerate()
                .map(|(n, a)| {
                    let kept = if n + 1 == count {
                        body.take().unwrap_or_default()
                    } else {
                        String::new()
                    };
                    a.into_attempt(u32::try_from(n + 1).unwrap_or(u32::MAX), kept)
                })
                .collect::<Result<_, _>>()?;
        Ok(Self {
            id,
            key,
            org: i.org,
            endpoint_id: i.ep,
            event_id: i.ev,
            event_type: i.ty,
            status: i.st,
            attempts,
            created_at,
            updated_at: from_millis(i.ua)?,
            next_attempt_at: i.na.map(from_millis).transpose()?,
            manual_retry: i.mr,
            held: i
                .gsi2pk
                .as_deref()
                .is_some_and(|pk| pk.starts_with("HELD#")),
        })
    }
}
