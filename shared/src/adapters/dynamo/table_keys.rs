//! The table's key formats: how each item is keyed (see `docs/DESIGN.md`, "Table
//! design"). One place for the whole layout, since the ports share items (an endpoint's
//! item also holds its delivery counter and its breaker's count).

use crate::domain::{DeliveryKey, DeliverySeq, EndpointNumber, KeyHash};
use chrono::{DateTime, Utc};
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

/// The one item that hands out endpoint numbers.
pub const SERIAL_PK: &str = "SERIAL";
pub const ENDPOINT_SERIAL_SK: &str = "ENDPOINT";

/// An event has a partition of its own: publishing never concentrates on one key.
pub fn event_pk(org: &str, id: &str) -> String {
    format!("EVT#{org}#{id}")
}

/// The organisation and event id an event's `pk` names (neither holds a `#`).
pub fn event_of(pk: &str) -> Option<(&str, &str)> {
    pk.strip_prefix("EVT#")?.split_once('#')
}

/// The place a delivery's keys name.
pub fn delivery_of(pk: &str, sk: &str) -> Option<DeliveryKey> {
    Some(DeliveryKey {
        endpoint_number: EndpointNumber(pk.strip_prefix("DLV#")?.parse().ok()?),
        seq: DeliverySeq(sk.parse().ok()?),
    })
}

pub const EVENT_SK: &str = "EVT";

/// An endpoint's delivery history, in sequence order.
pub fn history_pk(number: EndpointNumber) -> String {
    format!("DLV#{number}")
}

/// Zero-padded so string order is number order (13 digits: ten trillion).
pub fn seq_sk(seq: DeliverySeq) -> String {
    format!("{seq:013}")
}

/// Where a held delivery is indexed (`gsi2`), per endpoint.
pub fn held_gsi2pk(number: EndpointNumber) -> String {
    format!("HELD#{number}")
}

/// Where a failed delivery is indexed (`gsi2`), per endpoint. One sparse index serves
/// both lists: a delivery is in the held list while held (even a `failed` one with
/// a manual retry waiting for a resume), in the failed list otherwise when `failed`.
pub fn failed_gsi2pk(number: EndpointNumber) -> String {
    format!("FAILED#{number}")
}

/// A failed delivery's place: creation time (milliseconds), then seq, so a time
/// window is a key range.
pub fn failed_gsi2sk(created_ms: i64, seq: DeliverySeq) -> String {
    format!("{created_ms:013}#{}", seq_sk(seq))
}

/// The lowest key of the failed deliveries created at `ms` or later.
pub fn failed_from(ms: i64) -> String {
    format!("{ms:013}")
}

/// An organisation's attempts per hour, by endpoint.
pub fn stats_pk(org: &str) -> String {
    format!("STATS#{org}")
}

/// The attributes of endpoint `number`'s succeeded and failed attempts in an
/// organisation's hourly item.
pub fn stats_attributes(number: EndpointNumber) -> (String, String) {
    (format!("s{number}"), format!("f{number}"))
}

/// `YYYYMMDDHH`.
pub fn hour_sk(hour: DateTime<Utc>) -> String {
    hour.format("%Y%m%d%H").to_string()
}

pub fn recovery_pk(id: Uuid) -> String {
    format!("RECOVERY#{id}")
}
pub const RECOVERY_SK: &str = "REC";

/// The item naming an endpoint's latest recovery (`rid`): a start replaces it only if
/// it still names the recovery the start saw, so one endpoint runs one recovery at once.
/// Under the `RECOVERY#` prefix with the records it points at.
pub fn latest_recovery_pk(endpoint_id: Uuid) -> String {
    format!("RECOVERY#EP#{endpoint_id}")
}
pub const LATEST_RECOVERY_SK: &str = "LATEST";

/// The due list is split over this many partitions per minute, so a burst of
/// retries due in one minute never lands on one hot partition.
pub const DUE_SHARDS: u64 = 4;

/// `minute` as `YYYYMMDDHHMM`.
pub fn due_pk(minute: &str, shard: u64) -> String {
    format!("DUE#{minute}#{shard}")
}

pub const SCHEDULER_PK: &str = "SCHED";
pub const SCHEDULER_SK: &str = "DUE";
