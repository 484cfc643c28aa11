//! Administering API keys (the records of `domain::api_key`): minting, revoking and
//! listing them. The operator CLI, the local server's `--key` flag and portal sessions
//! all go through here.

use crate::domain::{self, ApiKey, KeyHash, OrgSlug, Role};
use crate::ports::{KeyStore, StoreError};
use thiserror::Error;
use uuid::Uuid;

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("invalid organisation: {0}")]
    InvalidOrg(String),
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("that key is already registered")]
    AlreadyRegistered,
    #[error("no such key")]
    NotFound,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for KeyError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::AlreadyExists => KeyError::AlreadyRegistered,
            other => KeyError::Store(other),
        }
    }
}

/// The organisation a key is minted, listed or revoked for, as the operator named it.
pub fn parse_org(raw: &str) -> Result<OrgSlug, KeyError> {
    OrgSlug::parse(raw).map_err(|e| KeyError::InvalidOrg(e.message))
}

/// Register a key for `org` with `role`: the one given, or a new random one. Returns the
/// key (the only time it exists outside the caller's hands) and its stored record.
pub async fn mint(
    store: &dyn KeyStore,
    org: &OrgSlug,
    role: Role,
    chosen: Option<String>,
) -> Result<(String, ApiKey), KeyError> {
    let key = match chosen {
        Some(k) => {
            ApiKey::check_chosen(&k).map_err(KeyError::InvalidKey)?;
            k
        }
        None => ApiKey::generate_secret(),
    };
    let record = ApiKey::new(&key, org, role, domain::now());
    store.insert_key(&record).await?;
    Ok((key, record))
}

/// A portal session: a key of `org` with `role` that works until `expires_at`.
pub async fn mint_session(
    store: &dyn KeyStore,
    org: &OrgSlug,
    role: Role,
    expires_at: chrono::DateTime<chrono::Utc>,
) -> Result<(String, ApiKey), KeyError> {
    let token = ApiKey::generate_secret();
    let mut record = ApiKey::new(&token, org, role, domain::now());
    record.expires_at = Some(expires_at);
    store.insert_key(&record).await?;
    Ok((token, record))
}

/// Revoke a key at once: the next request with it is 401.
pub async fn revoke(store: &dyn KeyStore, key: &str) -> Result<(), KeyError> {
    if store.delete_key(&KeyHash::of(key)).await? {
        Ok(())
    } else {
        Err(KeyError::NotFound)
    }
}

/// Revoke an organisation's key by its id (as `keys list` shows it), for a key nobody
/// kept. Returns the key revoked.
pub async fn revoke_by_id(
    store: &dyn KeyStore,
    org: &OrgSlug,
    id: Uuid,
) -> Result<ApiKey, KeyError> {
    let key = store
        .list_keys(org)
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or(KeyError::NotFound)?;
    if store.delete_key(&key.hash).await? {
        Ok(key)
    } else {
        Err(KeyError::NotFound)
    }
}

pub async fn list(store: &dyn KeyStore, org: &OrgSlug) -> Result<Vec<ApiKey>, KeyError> {
    Ok(store.list_keys(org).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryStore;
    use crate::domain::org::acme;

    #[tokio::test]
    async fn mint_revoke_list() {
        let store = MemoryStore::new();
        let (key, record) = mint(&store, &acme(), Role::Member, None)
            .await
            .expect("mint");
        assert_eq!(record.hash, KeyHash::of(&key));
        let (chosen, _) = mint(&store, &acme(), Role::Admin, Some("avk_local_admin".into()))
            .await
            .expect("mint chosen");
        assert_eq!(chosen, "avk_local_admin");
        assert!(matches!(
            mint(&store, &acme(), Role::Admin, Some("avk_local_admin".into())).await,
            Err(KeyError::AlreadyRegistered)
        ));
        assert!(matches!(parse_org("Bad Org"), Err(KeyError::InvalidOrg(_))));
        assert!(matches!(
            mint(&store, &acme(), Role::Admin, Some("short".into())).await,
            Err(KeyError::InvalidKey(_))
        ));
        assert_eq!(list(&store, &acme()).await.expect("list").len(), 2);
        revoke(&store, &key).await.expect("revoke");
        assert!(matches!(
            revoke(&store, &key).await,
            Err(KeyError::NotFound)
        ));
        let left = list(&store, &acme()).await.expect("list");
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].role, Role::Admin);

        // By id: only within the organisation named.
        assert!(matches!(
            revoke_by_id(&store, &OrgSlug::parse("other").expect("slug"), left[0].id).await,
            Err(KeyError::NotFound)
        ));
        let revoked = revoke_by_id(&store, &acme(), left[0].id)
            .await
            .expect("revoke by id");
        assert_eq!(revoked.hash, KeyHash::of("avk_local_admin"));
        assert!(list(&store, &acme()).await.expect("list").is_empty());
        assert!(matches!(
            revoke_by_id(&store, &acme(), left[0].id).await,
            Err(KeyError::NotFound)
        ));
    }
}
