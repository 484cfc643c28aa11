//! API-key authentication and role checks, as the first argument of every handler that
//! needs a key: [`Caller<A>`] is a caller whose key belongs to the path's organisation and
//! whose role `A` allows.
//!
//! Order matters: an unknown key is 401; a key of another organisation is 404, exactly as
//! if the organisation did not exist; only then is a too-low role, or a portal session
//! where only keys without an end may go, 403. It runs before any
//! other extractor that can fail, so an unauthenticated caller learns nothing from a
//! malformed id, query or body.

use super::path::org_slug;
use crate::api::error::{ApiError, Forbidden};
use crate::domain::OrgSlug;
use crate::domain::{ApiKey, KeyHash, Role};
use crate::ports::KeyStore;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use std::marker::PhantomData;
use std::sync::Arc;

/// Which roles a route admits, and whether portal sessions may use it.
pub trait Access: Send + Sync + 'static {
    const ROLES: &'static [Role];
    const SESSIONS: bool = true;
}

/// Roles that may read (list endpoints, browse deliveries).
pub struct Read;
/// Roles that may change endpoints or retry deliveries.
pub struct Write;
/// Roles that may publish events.
pub struct Publish;
/// Any valid key, whatever its role (`GET /key`).
pub struct AnyRole;
/// Admin keys without an end, which may create keys (portal sessions): a session may not.
pub struct Mint;

impl Access for Read {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Member];
}
impl Access for Write {
    const ROLES: &'static [Role] = &[Role::Admin];
}
impl Access for Publish {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Publisher];
}
impl Access for AnyRole {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Member, Role::Publisher];
}
impl Access for Mint {
    const ROLES: &'static [Role] = Write::ROLES;
    const SESSIONS: bool = false;
}

/// A caller whose key passed: of the organisation the path names (when it names one),
/// with a role `A` admits.
pub struct Caller<A> {
    pub key: ApiKey,
    access: PhantomData<A>,
}

impl<A> Caller<A> {
    /// The caller's organisation: the path's, on a route that names one.
    pub fn org(&self) -> &OrgSlug {
        &self.key.org
    }
}

impl<S, A> FromRequestParts<S> for Caller<A>
where
    S: Send + Sync,
    A: Access,
    Arc<dyn KeyStore>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let keys = Arc::<dyn KeyStore>::from_ref(state);
        let org = org_slug(parts, state).await?;
        let key = authorize(
            keys.as_ref(),
            &parts.headers,
            org.as_deref(),
            A::ROLES,
            A::SESSIONS,
        )
        .await?;
        Ok(Self {
            key,
            access: PhantomData,
        })
    }
}

/// Check the bearer key, that it may act on `org` (if the route names one), that its
/// role is one of `allowed`, and that it is no portal session unless `sessions`. `org`
/// is the path segment as written: one that fails the slug rule equals no key's org, so
/// it is 404 like any other organisation's. Only a request that passes records a use.
async fn authorize(
    keys: &dyn KeyStore,
    headers: &HeaderMap,
    org: Option<&str>,
    allowed: &[Role],
    sessions: bool,
) -> Result<ApiKey, ApiError> {
    let record = find(keys, headers).await?;
    if org.is_some_and(|org| record.org != org) {
        return Err(ApiError::NotFound);
    }
    if !allowed.contains(&record.role) {
        return Err(ApiError::Forbidden(Forbidden::Role));
    }
    if !sessions && !record.may_mint() {
        return Err(ApiError::Forbidden(Forbidden::Session));
    }
    record_use(keys, &record).await;
    Ok(record)
}

async fn find(keys: &dyn KeyStore, headers: &HeaderMap) -> Result<ApiKey, ApiError> {
    let presented = bearer_token(headers).ok_or(ApiError::Unauthorized)?;
    let hash = KeyHash::of(presented);
    // An expired portal session is refused like an unknown key (TTL deletes it later).
    keys.find_key(&hash)
        .await?
        .filter(|k| k.hash.matches(&hash) && k.is_valid_at(crate::domain::now()))
        .ok_or(ApiError::Unauthorized)
}

/// For `keys list`, at most once an hour per key; a failure must not fail the request.
async fn record_use(keys: &dyn KeyStore, record: &ApiKey) {
    let now = crate::domain::now();
    if record.use_worth_recording(now)
        && let Err(err) = keys.record_key_use(&record.hash, now).await
    {
        tracing::warn!(error = %err, key_id = %record.id, "recording a key's use failed");
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryStore;
    use axum::http::HeaderValue;
    use chrono::Utc;

    async fn store_with(key: &str, org: &str, role: Role) -> MemoryStore {
        let store = MemoryStore::new();
        let org = OrgSlug::parse(org).expect("org");
        store
            .insert_key(&ApiKey::new(key, &org, role, Utc::now()))
            .await
            .expect("insert");
        store
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("header"),
        );
        h
    }

    #[tokio::test]
    async fn a_use_is_recorded_at_most_once_an_hour_and_only_when_it_passes() {
        let store = store_with("avk_member_key_1", "acme", Role::Member).await;
        let hash = KeyHash::of("avk_member_key_1");
        let member_asks = |roles| {
            let store = &store;
            async move {
                authorize(
                    store,
                    &headers("Bearer avk_member_key_1"),
                    Some("acme"),
                    roles,
                    true,
                )
                .await
            }
        };
        assert!(member_asks(Write::ROLES).await.is_err());
        let stored = store.find_key(&hash).await.expect("find").expect("key");
        assert_eq!(stored.last_used_at, None, "a refused request is no use");

        member_asks(Read::ROLES).await.expect("authorized");
        let stored = store.find_key(&hash).await.expect("find").expect("key");
        assert!(stored.last_used_at.is_some());
        let changes = store.changes();
        member_asks(Read::ROLES).await.expect("authorized");
        assert_eq!(
            store.changes(),
            changes,
            "not written again within the hour"
        );
        let later = stored.last_used_at.expect("used") + chrono::TimeDelta::hours(1);
        assert!(stored.use_worth_recording(later));
    }

    #[tokio::test]
    async fn a_session_may_not_mint_and_its_refusal_is_no_use() {
        let store = MemoryStore::new();
        let mut session = ApiKey::new(
            "avk_admin_session",
            &OrgSlug::parse("acme").expect("org"),
            Role::Admin,
            Utc::now(),
        );
        session.expires_at = Some(Utc::now() + chrono::TimeDelta::hours(1));
        store.insert_key(&session).await.expect("insert");
        let asks = |roles, sessions| {
            let store = &store;
            async move {
                let h = headers("Bearer avk_admin_session");
                authorize(store, &h, Some("acme"), roles, sessions).await
            }
        };
        let refused = asks(Mint::ROLES, Mint::SESSIONS).await;
        assert!(matches!(
            refused,
            Err(ApiError::Forbidden(Forbidden::Session))
        ));
        let stored = store.find_key(&session.hash).await.expect("find");
        assert_eq!(stored.expect("key").last_used_at, None);
        assert!(asks(Write::ROLES, Write::SESSIONS).await.is_ok());
    }

    #[tokio::test]
    async fn a_route_without_an_organisation_takes_any_valid_key() {
        let store = store_with("avk_member_key_1", "acme", Role::Member).await;
        let any = authorize(
            &store,
            &headers("Bearer avk_member_key_1"),
            None,
            AnyRole::ROLES,
            true,
        )
        .await;
        assert_eq!(any.expect("any key").org, "acme");
        let unknown = authorize(&store, &headers("Bearer nope"), None, AnyRole::ROLES, true).await;
        assert_eq!(unknown.expect_err("unknown").status().as_u16(), 401);
    }

    #[tokio::test]
    async fn outcomes_in_order() {
        let store = store_with("avk_member_key_1", "acme", Role::Member).await;
        let ok = authorize(
            &store,
            &headers("Bearer avk_member_key_1"),
            Some("acme"),
            Read::ROLES,
            true,
        )
        .await;
        assert_eq!(ok.expect("authorized").role, Role::Member);
        let lower = authorize(
            &store,
            &headers("bearer avk_member_key_1"),
            Some("acme"),
            Read::ROLES,
            true,
        )
        .await;
        assert!(lower.is_ok(), "scheme is case-insensitive");

        let cases = [
            (HeaderMap::new(), "acme", Read::ROLES, 401),
            (headers("avk_member_key_1"), "acme", Read::ROLES, 401),
            (headers("Basic avk_member_key_1"), "acme", Read::ROLES, 401),
            (headers("Bearer "), "acme", Read::ROLES, 401),
            (headers("Bearer avk_member_key_2"), "acme", Read::ROLES, 401),
            (
                headers("Bearer avk_member_key_1"),
                "other",
                Read::ROLES,
                404,
            ),
            (
                headers("Bearer avk_member_key_1"),
                "other",
                Write::ROLES,
                404,
            ),
            (
                headers("Bearer avk_member_key_1"),
                "acme",
                Write::ROLES,
                403,
            ),
            (
                headers("Bearer avk_member_key_1"),
                "acme",
                Publish::ROLES,
                403,
            ),
        ];
        for (h, org, roles, status) in cases {
            let err = authorize(&store, &h, Some(org), roles, true)
                .await
                .expect_err("refused");
            assert_eq!(err.status().as_u16(), status, "{h:?} {org} {roles:?}");
        }
    }
}
