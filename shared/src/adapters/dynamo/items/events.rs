//! An event's item.

use super::{from_millis, millis};
use crate::adapters::dynamo::table_keys;
use crate::domain::OrgSlug;
use crate::domain::{DeliverySeq, EndpointNumber};
use crate::domain::{Event, Target};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
    /// The fan-out's holder, once one took it over or gave it up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fo: Option<String>,
    expires_at: i64,
}

/// The endpoint id as 16 bytes: an event item stays under 1 KB with ten targets.
#[derive(Serialize, Deserialize)]
struct TargetItem {
    #[serde(with = "serde_bytes_vec")]
    e: Vec<u8>,
    n: EndpointNumber,
    f: DeliverySeq,
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
            pk: table_keys::event_pk(&e.org, &e.id),
            sk: table_keys::EVENT_SK.to_owned(),
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
            fo: e.fan_out_holder.map(|h| h.to_string()),
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
        let (org, id) = table_keys::event_of(&i.pk)
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
            org: OrgSlug::stored(org),
            id: id.to_owned(),
            event_type: i.ty,
            created_at: from_millis(i.ca)?,
            payload,
            targets,
            fan_out_until: i.fu.map(from_millis).transpose()?,
            fan_out_holder: i
                .fo
                .map(|h| h.parse())
                .transpose()
                .map_err(|_| format!("event {id}: its fan-out holder is malformed"))?,
        })
    }
}
