//! An endpoint's item.

use crate::adapters::dynamo::table_keys;
use crate::domain::OrgSlug;
use crate::domain::time::rfc3339_millis;
use crate::domain::{DeliverySeq, EndpointNumber};
use crate::domain::{Endpoint, PausedBy, SigningSecret};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Serialize, Deserialize)]
pub struct EndpointItem {
    pk: String,
    sk: String,
    org: OrgSlug,
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
    number: EndpointNumber,
    #[serde(default)]
    delivery_seq: DeliverySeq,
    #[serde(with = "rfc3339_millis")]
    created_at: DateTime<Utc>,
    #[serde(with = "rfc3339_millis")]
    updated_at: DateTime<Utc>,
}

impl From<&Endpoint> for EndpointItem {
    fn from(e: &Endpoint) -> Self {
        Self {
            pk: table_keys::org_pk(&e.org),
            sk: table_keys::endpoint_sk(e.id),
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
