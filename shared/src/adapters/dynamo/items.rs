//! The table's item shapes and key formats (see `docs/DESIGN.md`, "Table design").

use crate::domain::time::format as ts;
use crate::domain::time::rfc3339_millis;
use crate::domain::{
    ApiKey, Attempt, AttemptError, Delivery, DeliveryStatus, Endpoint, Event, KeyHash, Lease, Role,
    SigningSecret, Trigger, Waiting,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub mod keys {
    use crate::domain::KeyHash;
    use uuid::Uuid;

    /// Sort key of the per-organisation item that holds `endpoint_count`.
    pub const ORG_SK: &str = "ORG";
    pub const ENDPOINT_SK_PREFIX: &str = "EP#";
    pub const API_KEY_SK: &str = "APIKEY";

    pub fn org_pk(org: &str) -> String {
        format!("ORG#{org}")
    }

    pub fn endpoint_sk(id: Uuid) -> String {
        format!("{ENDPOINT_SK_PREFIX}{id}")
    }

    pub fn api_key_pk(hash: &KeyHash) -> String {
        format!("APIKEY#{}", hash.as_str())
    }

    pub fn org_api_keys_gsi1pk(org: &str) -> String {
        format!("ORG#{org}#APIKEYS")
    }

    pub fn event_sk(id: &str) -> String {
        format!("EVT#{id}")
    }

    pub const DELIVERY_SK: &str = "DLV";

    pub fn delivery_pk(id: Uuid) -> String {
        format!("DLV#{id}")
    }

    pub fn attempt_sk(n: u32) -> String {
        format!("ATT#{n:010}")
    }

    pub fn endpoint_deliveries_gsi1pk(endpoint: Uuid) -> String {
        format!("EPD#{endpoint}")
    }

    /// Zero-padded so string order is number order.
    pub fn seq_gsi1sk(seq: u64) -> String {
        format!("{seq:020}")
    }

    /// The due index is split over this many partitions, so a busy sweep or a burst of
    /// retries never lands on one hot partition.
    pub const DUE_SHARDS: u128 = 8;

    pub const DUE_GSI2PK_PREFIX: &str = "DUE#";

    pub fn due_gsi2pk(delivery: Uuid) -> String {
        format!("{DUE_GSI2PK_PREFIX}{}", delivery.as_u128() % DUE_SHARDS)
    }

    pub fn due_gsi2sk(at: &str, delivery: Uuid) -> String {
        format!("{at}#{delivery}")
    }

    pub const PAUSED_GSI2PK_PREFIX: &str = "PAUSED#";

    pub fn paused_gsi2pk(endpoint: Uuid) -> String {
        format!("{PAUSED_GSI2PK_PREFIX}{endpoint}")
    }
}

#[derive(Serialize, Deserialize)]
pub struct EndpointItem {
    pk: String,
    sk: String,
    org: String,
    id: Uuid,
    url: String,
    description: String,
    event_types: Vec<String>,
    is_active: bool,
    consecutive_failures: u32,
    secret: String,
    #[serde(default)]
    delivery_seq: u64,
    #[serde(with = "rfc3339_millis")]
    created_at: DateTime<Utc>,
    #[serde(with = "rfc3339_millis")]
    updated_at: DateTime<Utc>,
}

impl From<&Endpoint> for EndpointItem {
    fn from(e: &Endpoint) -> Self {
        Self {
            pk: keys::org_pk(&e.org),
            sk: keys::endpoint_sk(e.id),
            org: e.org.clone(),
            id: e.id,
            url: e.url.clone(),
            description: e.description.clone(),
            event_types: e.event_types.clone(),
            is_active: e.is_active,
            consecutive_failures: e.consecutive_failures,
            secret: e.secret.expose().to_owned(),
            delivery_seq: e.delivery_seq,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

impl From<EndpointItem> for Endpoint {
    fn from(i: EndpointItem) -> Self {
        Self {
            org: i.org,
            id: i.id,
            url: i.url,
            description: i.description,
            event_types: i.event_types,
            is_active: i.is_active,
            consecutive_failures: i.consecutive_failures,
            secret: SigningSecret::from_stored(i.secret),
            delivery_seq: i.delivery_seq,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

#[derive(Serialize, Deserialize)]
pub struct ApiKeyItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    /// The key id (UUID v7), so `keys list` comes out oldest first.
    gsi1sk: String,
    id: Uuid,
    org: String,
    role: Role,
    hint: String,
    #[serde(with = "rfc3339_millis")]
    created_at: DateTime<Utc>,
}

impl From<&ApiKey> for ApiKeyItem {
    fn from(k: &ApiKey) -> Self {
        Self {
            pk: keys::api_key_pk(&k.hash),
            sk: keys::API_KEY_SK.to_owned(),
            gsi1pk: keys::org_api_keys_gsi1pk(&k.org),
            gsi1sk: k.id.to_string(),
            id: k.id,
            org: k.org.clone(),
            role: k.role,
            hint: k.hint.clone(),
            created_at: k.created_at,
        }
    }
}

impl TryFrom<ApiKeyItem> for ApiKey {
    type Error = String;
    fn try_from(i: ApiKeyItem) -> Result<Self, Self::Error> {
        let hash =
            i.pk.strip_prefix("APIKEY#")
                .ok_or_else(|| format!("API key item with unexpected pk for key {}", i.id))?;
        Ok(Self {
            id: i.id,
            hash: KeyHash::from_stored(hash.to_owned()),
            org: i.org,
            role: i.role,
            hint: i.hint,
            created_at: i.created_at,
        })
    }
}

/// Where a delivery sits in `gsi2`, from what it waits for: due ones under
/// `DUE#<shard>` sorted by due time, held ones under `PAUSED#<endpoint>`, idle ones
/// nowhere. Being under `PAUSED#` is also how a stored delivery says it is held.
pub fn gsi2_placement(d: &Delivery) -> Option<(String, String)> {
    match d.waiting() {
        Waiting::Due(at) => Some((keys::due_gsi2pk(d.id), keys::due_gsi2sk(&ts(&at), d.id))),
        Waiting::Held => Some((keys::paused_gsi2pk(d.endpoint_id), d.id.to_string())),
        Waiting::Idle => None,
    }
}

#[derive(Serialize, Deserialize)]
pub struct EventItem {
    pk: String,
    sk: String,
    org: String,
    id: String,
    event_type: String,
    #[serde(with = "rfc3339_millis")]
    created_at: DateTime<Utc>,
    payload: String,
    targets: Vec<Uuid>,
    fanned_out: bool,
    /// Epoch milliseconds (the domain's clock has millisecond precision, so the
    /// take-over's compare-and-set can match it exactly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fan_out_until: Option<i64>,
    expires_at: i64,
}

impl EventItem {
    pub fn new(e: &Event, expires_at: i64) -> Self {
        Self {
            pk: keys::org_pk(&e.org),
            sk: keys::event_sk(&e.id),
            org: e.org.clone(),
            id: e.id.clone(),
            event_type: e.event_type.clone(),
            created_at: e.created_at,
            payload: e.payload.clone(),
            targets: e.targets.clone(),
            fanned_out: e.fanned_out,
            fan_out_until: e.fan_out_until.map(|t| t.timestamp_millis()),
            expires_at,
        }
    }
}

impl From<EventItem> for Event {
    fn from(i: EventItem) -> Self {
        Self {
            org: i.org,
            id: i.id,
            event_type: i.event_type,
            created_at: i.created_at,
            payload: i.payload,
            targets: i.targets,
            fanned_out: i.fanned_out,
            fan_out_until: i.fan_out_until.and_then(DateTime::from_timestamp_millis),
        }
    }
}

#[derive(Serialize, Deserialize)]
pub struct DeliveryItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2sk: Option<String>,
    id: Uuid,
    org: String,
    endpoint_id: Uuid,
    event_id: String,
    event_type: String,
    seq: u64,
    status: DeliveryStatus,
    attempt_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_status_code: Option<u16>,
    #[serde(with = "rfc3339_millis")]
    created_at: DateTime<Utc>,
    #[serde(with = "rfc3339_millis")]
    updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next_attempt_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    manual_retry: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lease_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lease_until: Option<String>,
    expires_at: i64,
}

fn parse_ts(raw: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("stored timestamp {raw:?}: {e}"))
}

impl DeliveryItem {
    pub fn new(d: &Delivery, expires_at: i64) -> Self {
        let (gsi2pk, gsi2sk) = gsi2_placement(d).unzip();
        Self {
            pk: keys::delivery_pk(d.id),
            sk: keys::DELIVERY_SK.to_owned(),
            gsi1pk: keys::endpoint_deliveries_gsi1pk(d.endpoint_id),
            gsi1sk: keys::seq_gsi1sk(d.seq),
            gsi2pk,
            gsi2sk,
            id: d.id,
            org: d.org.clone(),
            endpoint_id: d.endpoint_id,
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            seq: d.seq,
            status: d.status,
            attempt_count: d.attempt_count,
            last_status_code: d.last_status_code,
            created_at: d.created_at,
            updated_at: d.updated_at,
            next_attempt_at: d.next_attempt_at.as_ref().map(ts),
            manual_retry: d.manual_retry,
            lease_id: d.lease.map(|l| l.id),
            lease_until: d.lease.map(|l| ts(&l.until)),
            expires_at,
        }
    }
}

impl TryFrom<DeliveryItem> for Delivery {
    type Error = String;
    fn try_from(i: DeliveryItem) -> Result<Self, String> {
        let lease = match (i.lease_id, i.lease_until) {
            (Some(id), Some(until)) => Some(Lease {
                id,
                until: parse_ts(&until)?,
            }),
            _ => None,
        };
        Ok(Self {
            id: i.id,
            org: i.org,
            endpoint_id: i.endpoint_id,
            event_id: i.event_id,
            event_type: i.event_type,
            seq: i.seq,
            status: i.status,
            attempt_count: i.attempt_count,
            last_status_code: i.last_status_code,
            created_at: i.created_at,
            updated_at: i.updated_at,
            next_attempt_at: i.next_attempt_at.as_deref().map(parse_ts).transpose()?,
            manual_retry: i.manual_retry,
            held: i
                .gsi2pk
                .is_some_and(|pk| pk.starts_with(keys::PAUSED_GSI2PK_PREFIX)),
            lease,
        })
    }
}

#[derive(Serialize, Deserialize)]
pub struct AttemptItem {
    pk: String,
    sk: String,
    attempt_number: u32,
    trigger: Trigger,
    #[serde(with = "rfc3339_millis")]
    started_at: DateTime<Utc>,
    duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status_code: Option<u16>,
    response_body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<AttemptError>,
    succeeded: bool,
    expires_at: i64,
}

impl AttemptItem {
    pub fn new(delivery: Uuid, a: &Attempt, expires_at: i64) -> Self {
        Self {
            pk: keys::delivery_pk(delivery),
            sk: keys::attempt_sk(a.attempt_number),
            attempt_number: a.attempt_number,
            trigger: a.trigger,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            response_body: a.response_body.clone(),
            error: a.error.clone(),
            succeeded: a.succeeded,
            expires_at,
        }
    }
}

impl From<AttemptItem> for Attempt {
    fn from(i: AttemptItem) -> Self {
        Self {
            attempt_number: i.attempt_number,
            trigger: i.trigger,
            started_at: i.started_at,
            duration_ms: i.duration_ms,
            status_code: i.status_code,
            response_body: i.response_body,
            error: i.error,
            succeeded: i.succeeded,
        }
    }
}
