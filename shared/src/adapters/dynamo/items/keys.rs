//! An API key's item.

use super::{from_millis, millis};
use crate::adapters::dynamo::table_keys;
use crate::domain::OrgSlug;
use crate::domain::time::rfc3339_millis;
use crate::domain::{ApiKey, KeyHash, Role};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Serialize, Deserialize)]
pub struct ApiKeyItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    /// The key id (UUID v7), so `keys list` comes out oldest first.
    gsi1sk: String,
    id: Uuid,
    org: OrgSlug,
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
    /// A portal session's parent key id. Absent from items (and state files) written
    /// before sessions recorded it; not projected into `gsi1`, like `last_used_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent_id: Option<Uuid>,
}

impl From<&ApiKey> for ApiKeyItem {
    fn from(k: &ApiKey) -> Self {
        Self {
            pk: table_keys::api_key_pk(&k.hash),
            sk: table_keys::API_KEY_SK.to_owned(),
            gsi1pk: table_keys::org_api_keys_gsi1pk(&k.org),
            gsi1sk: k.id.to_string(),
            id: k.id,
            org: k.org.clone(),
            role: k.role,
            hint: k.hint.clone(),
            created_at: k.created_at,
            last_used_at: k.last_used_at.map(millis),
            expires_at: k.expires_at.map(|t| t.timestamp()),
            parent_id: k.parent_id,
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
            parent_id: i.parent_id,
        })
    }
}
