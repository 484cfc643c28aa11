//! API-key authentication and role checks.

use super::ApiError;
use crate::domain::{ApiKey, KeyHash, Role};
use crate::ports::KeyStore;
use axum::http::{HeaderMap, header};

/// Roles that may read (list endpoints, browse deliveries).
pub const READ: &[Role] = &[Role::Admin, Role::Member];
/// Roles that may change endpoints or retry deliveries.
pub const WRITE: &[Role] = &[Role::Admin];
/// Roles that may publish events.
pub const PUBLISH: &[Role] = &[Role::Admin, Role::Publisher];

/// Check the bearer key and that it may act on `org` with one of `allowed` roles.
///
/// Order matters: an unknown key is 401; a key of another organisation is 404, exactly as
/// if the organisation did not exist; only then is a too-low role 403.
pub async fn authorize(
    keys: &dyn KeyStore,
    headers: &HeaderMap,
    org: &str,
    allowed: &[Role],
) -> Result<ApiKey, ApiError> {
    let record = find(keys, headers).await?;
    if record.org != org {
        return Err(ApiError::NotFound);
    }
    if !allowed.contains(&record.role) {
        return Err(ApiError::Forbidden);
    }
    record_use(keys, &record).await;
    Ok(record)
}

/// The bearer key, whatever its organisation and role (`GET /key`); 401 if unknown.
pub async fn identify(keys: &dyn KeyStore, headers: &HeaderMap) -> Result<ApiKey, ApiError> {
    let record = find(keys, headers).await?;
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
        store
            .insert_key(&ApiKey::new(key, org, role, Utc::now()))
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
        let refused = authorize(&store, &headers("Bearer avk_member_key_1"), "acme", WRITE).await;
        assert!(refused.is_err());
        let stored = store.find_key(&hash).await.expect("find").expect("key");
        assert_eq!(stored.last_used_at, None, "a refused request is no use");

        authorize(&store, &headers("Bearer avk_member_key_1"), "acme", READ)
            .await
            .expect("authorized");
        let stored = store.find_key(&hash).await.expect("find").expect("key");
        assert!(stored.last_used_at.is_some());
        let changes = store.changes();
        authorize(&store, &headers("Bearer avk_member_key_1"), "acme", READ)
            .await
            .expect("authorized");
        assert_eq!(
            store.changes(),
            changes,
            "not written again within the hour"
        );
        let later = stored.last_used_at.expect("used") + chrono::TimeDelta::hours(1);
        assert!(stored.use_worth_recording(later));
    }

    #[tokio::test]
    async fn outcomes_in_order() {
        let store = store_with("avk_member_key_1", "acme", Role::Member).await;
        let ok = authorize(&store, &headers("Bearer avk_member_key_1"), "acme", READ).await;
        assert_eq!(ok.expect("authorized").role, Role::Member);
        let lower = authorize(&store, &headers("bearer avk_member_key_1"), "acme", READ).await;
        assert!(lower.is_ok(), "scheme is case-insensitive");

        let cases = [
            (HeaderMap::new(), "acme", READ, 401),
            (headers("avk_member_key_1"), "acme", READ, 401),
            (headers("Basic avk_member_key_1"), "acme", READ, 401),
            (headers("Bearer "), "acme", READ, 401),
            (headers("Bearer avk_member_key_2"), "acme", READ, 401),
            (headers("Bearer avk_member_key_1"), "other", READ, 404),
            (headers("Bearer avk_member_key_1"), "other", WRITE, 404),
            (headers("Bearer avk_member_key_1"), "acme", WRITE, 403),
            (headers("Bearer avk_member_key_1"), "acme", PUBLISH, 403),
        ];
        for (h, org, roles, status) in cases {
            let err = authorize(&store, &h, org, roles)
                .await
                .expect_err("refused");
            assert_eq!(err.status().as_u16(), status, "{h:?} {org} {roles:?}");
        }
    }
}
