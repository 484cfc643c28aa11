//! Administering API keys (the records of `domain::api_key`): minting, revoking and
//! listing them. The operator CLI, the local server's `--key` flag and portal sessions
//! all go through here.

use crate::domain::{self, ApiKey, KeyHash, KeyStrength, OrgSlug, Role};
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
    #[error("a portal session may not create portal sessions or keys")]
    SessionMayNotMint,
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

/// Register a key for `org` with `role`: the one given (as strong as `strength` asks),
/// or a new random one. Returns the key (the only time it exists outside the caller's
/// hands) and its stored record.
pub async fn mint(
    store: &dyn KeyStore,
    org: &OrgSlug,
    role: Role,
    chosen: Option<String>,
    strength: KeyStrength,
) -> Result<(String, ApiKey), KeyError> {
    let key = match chosen {
        Some(k) => {
            ApiKey::check_chosen(&k, strength).map_err(KeyError::InvalidKey)?;
            k
        }
        None => ApiKey::generate_secret(),
    };
    let record = ApiKey::new(&key, org, role, domain::now());
    store.insert_key(&record).await?;
    Ok((key, record))
}

/// A portal session made by `parent` (a key without an end): a key of the parent's
/// organisation with `role` that works until `expires_at`, and records its parent so
/// revoking the parent revokes it.
pub async fn mint_session(
    store: &dyn KeyStore,
    parent: &ApiKey,
    role: Role,
    expires_at: chrono::DateTime<chrono::Utc>,
) -> Result<(String, ApiKey), KeyError> {
    if !parent.may_mint() {
        return Err(KeyError::SessionMayNotMint);
    }
    let token = ApiKey::generate_secret();
    let mut record = ApiKey::new(&token, &parent.org, role, domain::now());
    record.expires_at = Some(expires_at);
    record.parent_id = Some(parent.id);
    store.insert_key(&record).await?;
    Ok((token, record))
}

/// A revocation: the key, and how many portal sessions went with it.
#[derive(Debug)]
pub struct Revoked {
    pub key: ApiKey,
    pub sessions: usize,
}

/// Revoke a key at once, and the portal sessions it created: the next request with any
/// of them is 401.
pub async fn revoke(store: &dyn KeyStore, key: &str) -> Result<Revoked, KeyError> {
    let record = store
        .find_key(&KeyHash::of(key))
        .await?
        .ok_or(KeyError::NotFound)?;
    revoke_with_sessions(store, record).await
}

/// Revoke an organisation's key by its id (as `keys list` shows it), for a key nobody
/// kept, and the portal sessions it created.
pub async fn revoke_by_id(
    store: &dyn KeyStore,
    org: &OrgSlug,
    id: Uuid,
) -> Result<Revoked, KeyError> {
    let record = store
        .list_keys(org)
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or(KeyError::NotFound)?;
    revoke_with_sessions(store, record).await
}

/// Delete `key` first, so it authorizes no new session while its sessions go; then
/// every key whose parent is gone: its sessions, and theirs (sessions could mint
/// sessions before [`ApiKey::may_mint`] refused it, and tables still hold them).
async fn revoke_with_sessions(store: &dyn KeyStore, key: ApiKey) -> Result<Revoked, KeyError> {
    if !store.delete_key(&key.hash).await? {
        return Err(KeyError::NotFound);
    }
    let keys = store.list_keys(&key.org).await?;
    let mut gone = vec![key.id];
    let mut sessions = 0;
    let mut next = 0;
    while let Some(&parent) = gone.get(next) {
        next += 1;
        for child in keys.iter().filter(|k| k.parent_id == Some(parent)) {
            // Ids are unique and a parent is older than its child, so this only guards
            // a hand-edited state file against looping.
            if gone.contains(&child.id) {
                continue;
            }
            gone.push(child.id);
            if store.delete_key(&child.hash).await? {
                sessions += 1;
            }
        }
    }
    Ok(Revoked { key, sessions })
}

pub async fn list(store: &dyn KeyStore, org: &OrgSlug) -> Result<Vec<ApiKey>, KeyError> {
    Ok(store.list_keys(org).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryStore;
    use crate::domain::org::acme;
    use KeyStrength::{Deployed, Development};

    #[tokio::test]
    async fn mint_revoke_list() {
        let store = MemoryStore::new();
        let (key, record) = mint(&store, &acme(), Role::Member, None, Deployed)
            .await
            .expect("mint");
        assert_eq!(record.hash, KeyHash::of(&key));
        let local = || Some("avk_local_admin".to_owned());
        assert!(matches!(
            mint(&store, &acme(), Role::Admin, local(), Deployed).await,
            Err(KeyError::InvalidKey(_))
        ));
        let (chosen, _) = mint(&store, &acme(), Role::Admin, local(), Development)
            .await
            .expect("mint chosen");
        assert_eq!(chosen, "avk_local_admin");
        assert!(matches!(
            mint(&store, &acme(), Role::Admin, local(), Development).await,
            Err(KeyError::AlreadyRegistered)
        ));
        assert!(matches!(parse_org("Bad Org"), Err(KeyError::InvalidOrg(_))));
        assert!(matches!(
            mint(
                &store,
                &acme(),
                Role::Admin,
                Some("short".into()),
                Development
            )
            .await,
            Err(KeyError::InvalidKey(_))
        ));
        assert_eq!(list(&store, &acme()).await.expect("list").len(), 2);
        let revoked = revoke(&store, &key).await.expect("revoke");
        assert_eq!((revoked.key.id, revoked.sessions), (record.id, 0));
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
        assert_eq!(revoked.key.hash, KeyHash::of("avk_local_admin"));
        assert!(list(&store, &acme()).await.expect("list").is_empty());
        assert!(matches!(
            revoke_by_id(&store, &acme(), left[0].id).await,
            Err(KeyError::NotFound)
        ));
    }

    #[tokio::test]
    async fn sessions_record_their_parent_cannot_mint_and_go_with_it() {
        let store = MemoryStore::new();
        let later = domain::now() + chrono::TimeDelta::hours(1);
        let (_, admin) = mint(&store, &acme(), Role::Admin, None, Deployed)
            .await
            .expect("admin");
        let (_, other) = mint(&store, &acme(), Role::Admin, None, Deployed)
            .await
            .expect("another admin");
        let (_, session) = mint_session(&store, &admin, Role::Admin, later)
            .await
            .expect("session");
        let (_, kept) = mint_session(&store, &other, Role::Member, later)
            .await
            .expect("another's session");
        assert_eq!(session.parent_id, Some(admin.id));
        assert_eq!(session.org, admin.org);
        assert!(matches!(
            mint_session(&store, &session, Role::Member, later).await,
            Err(KeyError::SessionMayNotMint)
        ));

        // A session a session made before that was refused (stored as it would be).
        let mut grandchild = ApiKey::new("avk_made_by_a_session", &acme(), Role::Member, later);
        grandchild.expires_at = Some(later);
        grandchild.parent_id = Some(session.id);
        store.insert_key(&grandchild).await.expect("grandchild");

        let revoked = revoke_by_id(&store, &acme(), admin.id)
            .await
            .expect("revoke");
        assert_eq!(revoked.sessions, 2, "its session and that one's");
        let left: Vec<Uuid> = list(&store, &acme())
            .await
            .expect("list")
            .iter()
            .map(|k| k.id)
            .collect();
        assert_eq!(left, vec![other.id, kept.id], "another key's session stays");
    }
}
