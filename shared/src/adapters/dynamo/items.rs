//! The table's item shapes and key formats (see `docs/DESIGN.md`, "Table design").

use crate::domain::time::rfc3339_millis;
use crate::domain::{ApiKey, Endpoint, KeyHash, Role, SigningSecret};
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
