//! `POST /org/{org_slug}/webhooks/portal-sessions`: a short-lived token for one
//! organisation and role, and the console's URL carrying it in the fragment (which
//! browsers never send to a server, so it reaches no log). The token is an API key that
//! stops working at `expires_at`: refused like an unknown key from then on, and deleted
//! by the table's TTL later. Only a key without an end may ask (a session is 403), and
//! the token records that key as its parent, so revoking the key revokes the session.

use super::error::ApiError;
use super::extract::auth::{Caller, Mint};
use super::extract::body::{FromJson, JsonFields, ValidJson};
use super::extract::query::NoQuery;
use super::request_metrics::labelled;
use crate::domain::api_key::{DEFAULT_SESSION_TTL_SECONDS, SESSION_TTL_SECONDS};
use crate::domain::time::rfc3339_millis;
use crate::domain::{Role, ValidationError, now};
use crate::key_admin;
use crate::ports::KeyStore;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;

/// Where the console is served, below the API's own address.
pub const CONSOLE_PATH: &str = "/console/";

pub fn routes(keys: Arc<dyn KeyStore>) -> Router {
    labelled(
        Router::new()
            .route(
                "/org/{org_slug}/webhooks/portal-sessions",
                post(create_session),
            )
            .with_state(keys),
        "portal",
    )
}

#[derive(Serialize)]
struct PortalSession {
    token: String,
    url: String,
    #[serde(with = "rfc3339_millis")]
    expires_at: DateTime<Utc>,
}

async fn create_session(
    State(keys): State<Arc<dyn KeyStore>>,
    caller: Caller<Mint>,
    _: NoQuery,
    headers: HeaderMap,
    ValidJson(SessionRequest { role, ttl }): ValidJson<SessionRequest>,
) -> Result<Response, ApiError> {
    let expires_at = now() + chrono::Duration::seconds(i64::from(ttl));
    let (token, record) =
        key_admin::mint_session(keys.as_ref(), &caller.key, role, expires_at).await?;
    tracing::info!(org = record.org.as_str(), key_id = %record.id, parent_id = %caller.key.id, role = %role, %expires_at, "portal session created");
    let url = format!("{}{CONSOLE_PATH}#token={token}", origin(&headers));
    Ok((
        StatusCode::CREATED,
        Json(PortalSession {
            token,
            url,
            expires_at,
        }),
    )
        .into_response())
}

/// What a session is for: a role and how long it lasts.
#[derive(Debug, PartialEq, Eq)]
struct SessionRequest {
    role: Role,
    ttl: u32,
}

impl FromJson for SessionRequest {
    type Given = Self;

    fn take(fields: &mut JsonFields) -> Result<Self, ApiError> {
        let role = match fields.string("role")?.as_deref() {
            Some("admin") => Role::Admin,
            Some("member") => Role::Member,
            Some(_) => return Err(ValidationError::new("role", "must be admin or member").into()),
            None => return Err(ValidationError::new("role", "is required").into()),
        };
        let ttl = fields
            .whole_number("ttl_seconds")?
            .unwrap_or(DEFAULT_SESSION_TTL_SECONDS);
        if !SESSION_TTL_SECONDS.contains(&ttl) {
            return Err(ValidationError::new(
                "ttl_seconds",
                format!(
                    "must be from {} to {} seconds",
                    SESSION_TTL_SECONDS.start(),
                    SESSION_TTL_SECONDS.end()
                ),
            )
            .into());
        }
        Ok(Self { role, ttl })
    }

    fn check(given: Self) -> Result<Self, ApiError> {
        Ok(given)
    }
}

/// The address the caller reached the API at: `Host`, with the scheme API Gateway
/// reports in `X-Forwarded-Proto` (`http` without one: the local server).
fn origin(headers: &HeaderMap) -> String {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let scheme = match text("x-forwarded-proto") {
        Some("https") => "https",
        _ => "http",
    };
    let host = text(header::HOST.as_str())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::extract::body::from_json;
    use axum::http::HeaderValue;

    #[test]
    fn origin_follows_the_host_and_the_forwarded_scheme() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:3000"));
        assert_eq!(origin(&h), "http://127.0.0.1:3000");
        h.insert(
            header::HOST,
            HeaderValue::from_static("abc.execute-api.us-east-1.amazonaws.com"),
        );
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert_eq!(
            origin(&h),
            "https://abc.execute-api.us-east-1.amazonaws.com"
        );
        // A host that is no host name is not echoed into a link.
        h.insert(header::HOST, HeaderValue::from_static("evil.example/x?y#z"));
        assert_eq!(origin(&h), "https://localhost");
    }

    #[test]
    fn roles_and_ttl() {
        let parse_json =
            |s: &str| from_json::<SessionRequest>(s.as_bytes()).map(|r| (r.role, r.ttl));
        assert_eq!(
            parse_json(r#"{"role": "member"}"#).expect("valid"),
            (Role::Member, 3600)
        );
        assert_eq!(
            parse_json(r#"{"role": "admin", "ttl_seconds": 60}"#).expect("valid"),
            (Role::Admin, 60)
        );
        assert_eq!(
            parse_json(r#"{"role": "admin", "ttl_seconds": 106.0}"#).expect("an integer"),
            (Role::Admin, 106)
        );
        for bad in [
            r#"{"role": "publisher"}"#,
            r#"{}"#,
            r#"{"role": "admin", "ttl_seconds": 59}"#,
            r#"{"role": "admin", "ttl_seconds": 86401}"#,
            r#"{"role": "admin", "ttl_seconds": 1.5}"#,
        ] {
            assert!(parse_json(bad).is_err(), "{bad}");
        }
        assert!(parse_json(r#"{"role": "admin", "extra": 1}"#).is_err());
    }
}
