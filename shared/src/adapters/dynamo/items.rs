//! The table's item shapes and key formats (see `docs/DESIGN.md`, "Table design").

use crate::domain::recovery::{FailedPosition, Recovery, RecoveryStatus};
use crate::domain::stats::{EndpointCounts, OrgHourCounts, STATS_KEPT_DAYS};
use crate::domain::time::rfc3339_millis;
use crate::domain::{
    ApiKey, Attempt, AttemptError, AttemptErrorKind, Delivery, DeliveryJob, DeliveryKey,
    DeliveryStatus, Endpoint, Event, EventRef, KeyHash, PausedBy, Role, ScheduledAttempt,
    SigningSecret, Target, Trigger,
};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

pub mod keys {
    use crate::domain::{DeliveryKey, KeyHash};
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
            endpoint_number: pk.strip_prefix("DLV#")?.parse().ok()?,
            seq: sk.parse().ok()?,
        })
    }

    pub const EVENT_SK: &str = "EVT";

    /// An endpoint's delivery history, in sequence order.
    pub fn history_pk(number: u32) -> String {
        format!("DLV#{number}")
    }

    /// Zero-padded so string order is number order (13 digits: ten trillion).
    pub fn seq_sk(seq: u64) -> String {
        format!("{seq:013}")
    }

    /// Where a held delivery is indexed (`gsi2`), per endpoint.
    pub fn held_gsi2pk(number: u32) -> String {
        format!("HELD#{number}")
    }

    /// Where a failed delivery is indexed (`gsi2`), per endpoint. One sparse index serves
    /// both lists: a delivery is in the held list while held (even a `failed` one with
    /// a manual retry waiting for a resume), in the failed list otherwise when `failed`.
    pub fn failed_gsi2pk(number: u32) -> String {
        format!("FAILED#{number}")
    }

    /// A failed delivery's place: creation time (milliseconds), then seq, so a time
    /// window is a key range.
    pub fn failed_gsi2sk(created_ms: i64, seq: u64) -> String {
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
    pub fn stats_attributes(number: u32) -> (String, String) {
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

    /// The due list is split over this many partitions per minute, so a burst of
    /// retries due in one minute never lands on one hot partition.
    pub const DUE_SHARDS: u64 = 4;

    /// `minute` as `YYYYMMDDHHMM`.
    pub fn due_pk(minute: &str, shard: u64) -> String {
        format!("DUE#{minute}#{shard}")
    }

    pub const SCHEDULER_PK: &str = "SCHED";
    pub const SCHEDULER_SK: &str = "DUE";
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    paused_by: Option<String>,
    consecutive_failures: u32,
    secret: String,
    #[serde(default)]
    number: u32,
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
            paused_by: e.paused_by.map(|p| p.as_str().to_owned()),
            consecutive_failures: e.consecutive_failures,
            secret: e.secret.expose().to_owned(),
            number: e.number,
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
            // An inactive endpoint stored before the reason was kept: paused by hand
            // or otherwise, it is not known.
            paused_by: i.paused_by.as_deref().and_then(PausedBy::parse),
            consecutive_failures: i.consecutive_failures,
            secret: SigningSecret::from_stored(i.secret),
            number: i.number,
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
    /// Epoch milliseconds. Not projected into `gsi1`: recording a use writes the item
    /// alone, and `keys list` reads it from the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used_at: Option<i64>,
    /// A portal session's end, in Unix seconds: the table's TTL attribute, so DynamoDB
    /// deletes the token after it (reads refuse it from that second on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
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
            last_used_at: k.last_used_at.map(millis),
            expires_at: k.expires_at.map(|t| t.timestamp()),
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
            last_used_at: i.last_used_at.map(from_millis).transpose()?,
            expires_at: i
                .expires_at
                .map(|s| {
                    DateTime::from_timestamp(s, 0)
                        .ok_or_else(|| format!("key {}: expiry {s} out of range", i.id))
                })
                .transpose()?,
        })
    }
}

/// Times are stored as epoch milliseconds: shorter than text, and exact.
fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(ms: i64) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| format!("stored time {ms} is out of range"))
}

/// An event: its envelope compressed (deflate), since it is written once and read
/// rarely (the queue message carries it to the sender), and a smaller item is a
/// cheaper write.
#[derive(Serialize, Deserialize)]
pub struct EventItem {
    /// `EVT#<org>#<event id>`: the organisation and the id are read back from it.
    pk: String,
    sk: String,
    ty: String,
    ca: i64,
    #[serde(with = "serde_bytes_vec")]
    body: Vec<u8>,
    tg: Vec<TargetItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fu: Option<i64>,
    expires_at: i64,
}

/// The endpoint id as 16 bytes: an event item stays under 1 KB with ten targets.
#[derive(Serialize, Deserialize)]
struct TargetItem {
    #[serde(with = "serde_bytes_vec")]
    e: Vec<u8>,
    n: u32,
    f: u64,
}

/// `Vec<u8>` as a DynamoDB binary attribute (serde would make it a list of numbers).
mod serde_bytes_vec {
    use serde::Serializer;
    use serde::de::{Deserializer, Error, Visitor};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    struct Bytes;

    impl Visitor<'_> for Bytes {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a binary attribute")
        }

        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(Bytes)
    }
}

impl EventItem {
    pub fn new(e: &Event, expires_at: i64) -> Self {
        Self {
            pk: keys::event_pk(&e.org, &e.id),
            sk: keys::EVENT_SK.to_owned(),
            ty: e.event_type.clone(),
            ca: millis(e.created_at),
            body: miniz_oxide::deflate::compress_to_vec(e.payload.as_bytes(), 6),
            tg: e
                .targets
                .iter()
                .map(|t| TargetItem {
                    e: t.endpoint_id.as_bytes().to_vec(),
                    n: t.endpoint_number,
                    f: t.seq_floor,
                })
                .collect(),
            fu: e.fan_out_until.map(millis),
            expires_at,
        }
    }
}

/// Envelopes are at most 256 KiB of `data` plus a little: anything that inflates past
/// this is not one of ours.
const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

impl TryFrom<EventItem> for Event {
    type Error = String;
    fn try_from(i: EventItem) -> Result<Self, String> {
        let (org, id) = keys::event_of(&i.pk)
            .ok_or_else(|| format!("event item with unexpected pk {}", i.pk))?;
        let raw = miniz_oxide::inflate::decompress_to_vec_with_limit(&i.body, MAX_PAYLOAD_BYTES)
            .map_err(|e| format!("event {id}: payload does not inflate: {e:?}"))?;
        let payload =
            String::from_utf8(raw).map_err(|_| format!("event {id}: payload is not UTF-8"))?;
        let targets = i
            .tg
            .into_iter()
            .map(|t| {
                Ok(Target {
                    endpoint_id: Uuid::from_slice(&t.e)
                        .map_err(|_| format!("event {id}: a target's endpoint id is malformed"))?,
                    endpoint_number: t.n,
                    seq_floor: t.f,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            org: org.to_owned(),
            id: id.to_owned(),
            event_type: i.ty,
            created_at: from_millis(i.ca)?,
            payload,
            targets,
            fan_out_until: i.fu.map(from_millis).transpose()?,
        })
    }
}

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
    org: String,
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
            Some(keys::held_gsi2pk(d.key.endpoint_number)),
            Some(keys::seq_sk(d.key.seq)),
        )
    } else if d.status == DeliveryStatus::Failed {
        (
            Some(keys::failed_gsi2pk(d.key.endpoint_number)),
            Some(keys::failed_gsi2sk(millis(d.created_at), d.key.seq)),
        )
    } else {
        (None, None)
    }
}

impl DeliveryItem {
    pub fn new(d: &Delivery, expires_at: i64) -> Self {
        let (gsi2pk, gsi2sk) = index_placement(d);
        Self {
            pk: keys::history_pk(d.key.endpoint_number),
            sk: keys::seq_sk(d.key.seq),
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
        let key = keys::delivery_of(&i.pk, &i.sk)
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

/// An automatic attempt due in a given minute.
#[derive(Serialize, Deserialize)]
pub struct ScheduledItem {
    pk: String,
    sk: String,
    org: String,
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
            pk: keys::due_pk(&minute_key(a.at), key.seq % keys::DUE_SHARDS),
            sk: format!(
                "{}#{}#{}",
                key.endpoint_number,
                keys::seq_sk(key.seq),
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

/// An organisation's attempts in one UTC hour, kept [`STATS_KEPT_DAYS`]: `h` (the
/// hour, Unix milliseconds) and, per endpoint number `n` that had attempts, `s<n>` and
/// `f<n>`. One item per organisation rather than per endpoint, so a batch's attempts to
/// many endpoints of one organisation are one write; the sender `ADD`s to it.
pub fn stats_item(c: &OrgHourCounts) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("pk".to_owned(), AttributeValue::S(keys::stats_pk(&c.org))),
        ("sk".to_owned(), AttributeValue::S(keys::hour_sk(c.hour))),
        (
            "h".to_owned(),
            AttributeValue::N(millis(c.hour).to_string()),
        ),
        (
            "expires_at".to_owned(),
            AttributeValue::N(stats_expiry(c.hour).to_string()),
        ),
    ]);
    for (number, counts) in &c.endpoints {
        let (s, f) = keys::stats_attributes(*number);
        item.insert(s, AttributeValue::N(counts.succeeded.to_string()));
        item.insert(f, AttributeValue::N(counts.failed.to_string()));
    }
    item
}

/// An hourly item back: the organisation, the hour and each endpoint's counts.
pub fn stats_of(item: &HashMap<String, AttributeValue>) -> Result<OrgHourCounts, String> {
    let number = |name: &str| -> Result<u64, String> {
        match item.get(name) {
            Some(AttributeValue::N(n)) => n.parse().map_err(|_| format!("{name} is {n}")),
            _ => Ok(0),
        }
    };
    let org = match item.get("pk") {
        Some(AttributeValue::S(pk)) => pk.strip_prefix("STATS#").map(str::to_owned),
        _ => None,
    }
    .ok_or("statistics item without an organisation")?;
    let hour = from_millis(i64::try_from(number("h")?).map_err(|e| e.to_string())?)?;
    let mut endpoints = BTreeMap::new();
    // An endpoint with only successes, or only failures, in the hour has one of the two.
    let numbers: std::collections::BTreeSet<u32> = item
        .keys()
        .filter_map(|name| name.strip_prefix(['s', 'f'])?.parse().ok())
        .collect();
    for n in numbers {
        let (s, f) = keys::stats_attributes(n);
        endpoints.insert(
            n,
            EndpointCounts {
                succeeded: number(&s)?,
                failed: number(&f)?,
            },
        );
    }
    Ok(OrgHourCounts {
        org,
        hour,
        endpoints,
    })
}

/// When an hour's counts may go (epoch seconds).
pub fn stats_expiry(hour: DateTime<Utc>) -> i64 {
    (hour + chrono::Duration::days(STATS_KEPT_DAYS)).timestamp()
}

/// A recovery job's record.
#[derive(Serialize, Deserialize)]
pub struct RecoveryItem {
    pk: String,
    sk: String,
    org: String,
    ep: Uuid,
    n: u32,
    since: i64,
    until: i64,
    st: String,
    q: u64,
    ca: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fa: Option<i64>,
    /// The last failed delivery handled: creation time (ms) and seq.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pt: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ps: Option<u64>,
    expires_at: i64,
}

impl RecoveryItem {
    pub fn new(r: &Recovery, expires_at: i64) -> Self {
        Self {
            pk: keys::recovery_pk(r.id),
            sk: keys::RECOVERY_SK.to_owned(),
            org: r.org.clone(),
            ep: r.endpoint_id,
            n: r.endpoint_number,
            since: millis(r.since),
            until: millis(r.until),
            st: r.status.as_str().to_owned(),
            q: r.queued,
            ca: millis(r.created_at),
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
            finished_at: i.fa.map(from_millis).transpose()?,
            position,
        })
    }
}
