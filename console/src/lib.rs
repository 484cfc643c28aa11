//! The web console: static assets compiled into the binary and served under
//! [`CONSOLE_PATH`] with a strict Content-Security-Policy. The page signs in with an API
//! key or a portal token and does everything else through the public API, so this
//! crate holds no state and knows nothing of the store.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use thiserror::Error;

/// Where the console is served (the portal links point here).
pub const CONSOLE_PATH: &str = "/console/";

/// One file of the console.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// An asset by its file name in `assets/`, compiled in.
macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../assets/", $name)),
        }
    };
}

/// One of the page's ES modules.
macro_rules! module {
    ($name:literal) => {
        asset!($name, "text/javascript; charset=utf-8")
    };
}

/// Every file, by the name it is served under (below [`CONSOLE_PATH`]). `index.html`
/// is also the console's own address.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    // The layout, header, session and router; it imports the rest.
    module!("app.js"),
    asset!("app.css", "text/css; charset=utf-8"),
    // What every screen shares.
    module!("api.js"),
    module!("dom.js"),
    module!("view.js"),
    module!("session.js"),
    module!("parts.js"),
    module!("chart.js"),
    // One module per screen (and the endpoint page's recovery).
    module!("signin.js"),
    module!("endpoints.js"),
    module!("endpoint-form.js"),
    module!("endpoint.js"),
    module!("recovery.js"),
    module!("deliveries.js"),
    module!("delivery.js"),
];

/// Who may show the console in a frame: the CSP `frame-ancestors` sources. `'none'`
/// unless configured (`CONSOLE_FRAME_ANCESTORS`), so embedding is an explicit choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameAncestors(String);

#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "CONSOLE_FRAME_ANCESTORS: `{0}` is not an origin (scheme://host[:port], e.g. https://app.example.com) or 'self'"
)]
pub struct BadFrameAncestor(String);

impl FrameAncestors {
    /// Space- or comma-separated origins (`https://app.example.com`,
    /// `http://127.0.0.1:8080`) or `'self'`; empty or absent means no framing at all.
    /// Anything else is refused, so nothing can be smuggled into the policy.
    pub fn parse(value: Option<&str>) -> Result<Self, BadFrameAncestor> {
        let sources: Vec<&str> = value
            .unwrap_or("")
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .collect();
        if sources.is_empty() {
            return Ok(Self("'none'".to_owned()));
        }
        for source in &sources {
            if !(*source == "'self'" || is_origin(source)) {
                return Err(BadFrameAncestor((*source).to_owned()));
            }
        }
        Ok(Self(sources.join(" ")))
    }
}

impl Default for FrameAncestors {
    fn default() -> Self {
        Self("'none'".to_owned())
    }
}

/// `http(s)://host[:port]` with a host of letters, digits, dots, hyphens (or an IPv6
/// literal in brackets) and nothing after it.
fn is_origin(source: &str) -> bool {
    let Some(rest) = source
        .strip_prefix("https://")
        .or_else(|| source.strip_prefix("http://"))
    else {
        return false;
    };
    !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

/// The headers every console response carries. Scripts and styles come only from this
/// origin (no inline code, no `eval`), requests go only to this API, and no page of
/// another origin may frame it unless configured.
fn security_headers(frame_ancestors: &FrameAncestors) -> HeaderMap {
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {}",
        frame_ancestors.0
    );
    let mut headers = HeaderMap::new();
    let pairs: [(header::HeaderName, String); 5] = [
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        (header::REFERRER_POLICY, "no-referrer".to_owned()),
        // Small files, always revalidated: a deploy shows at the next load.
        (header::CACHE_CONTROL, "no-cache".to_owned()),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin".to_owned(),
        ),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    headers
}

/// An asset's validator: a hash of its bytes, the same in every instance of one build.
fn etag(body: &[u8]) -> String {
    // FNV-1a: a stable, dependency-free digest; collisions only cost a stale asset.
    let hash = body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("\"{hash:016x}\"")
}

fn serve(asset: &'static Asset, headers: &HeaderMap, security: &HeaderMap) -> Response {
    let tag = etag(asset.body);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response()
    };
    response.headers_mut().extend(security.clone());
    if let Ok(tag) = HeaderValue::from_str(&tag) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}

/// `GET /console/` and each asset below it. The page is also served at `/console`
/// (it names its files by absolute path, so it works at either), not redirected: which
/// of the two a gateway routes is then of no consequence. Unknown names are left to the
/// API's own JSON 404.
pub fn routes(frame_ancestors: FrameAncestors) -> Router {
    let security = Arc::new(security_headers(&frame_ancestors));
    let mut router = Router::new();
    for asset in ASSETS {
        let security = security.clone();
        let handler =
            get(move |headers: HeaderMap| async move { serve(asset, &headers, &security) });
        if asset.name == "index.html" {
            router = router
                .route(CONSOLE_PATH, handler.clone())
                .route(CONSOLE_PATH.trim_end_matches('/'), handler);
        } else {
            router = router.route(&format!("{CONSOLE_PATH}{}", asset.name), handler);
        }
    }
    router
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_ancestors_take_origins_and_self_only() {
        assert_eq!(FrameAncestors::parse(None), Ok(FrameAncestors::default()));
        assert_eq!(
            FrameAncestors::parse(Some(" ")),
            Ok(FrameAncestors::default())
        );
        assert_eq!(
            FrameAncestors::parse(Some("https://app.example.com, 'self'")),
            Ok(FrameAncestors("https://app.example.com 'self'".to_owned()))
        );
        for bad in [
            "*",
            "https://a.example; script-src *",
            "javascript:alert(1)",
            "https://",
            "app.example.com",
            "https://a.example/path",
        ] {
            assert!(FrameAncestors::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_asset_is_served_with_the_policy() {
        let security = security_headers(&FrameAncestors::default());
        for asset in ASSETS {
            let response = serve(asset, &HeaderMap::new(), &security);
            assert_eq!(response.status(), StatusCode::OK, "{}", asset.name);
            let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap_or_default();
            assert!(csp.contains("script-src 'self';"), "{csp}");
            assert!(csp.ends_with("frame-ancestors 'none'"), "{csp}");
            assert!(!asset.body.is_empty());
        }
    }

    #[test]
    fn every_file_of_the_assets_folder_is_served() {
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/assets");
        let mut files: Vec<String> = std::fs::read_dir(folder)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        let mut served: Vec<String> = ASSETS.iter().map(|a| a.name.to_owned()).collect();
        served.sort();
        assert_eq!(files, served);
    }

    #[test]
    fn a_matching_etag_gets_304() {
        let security = security_headers(&FrameAncestors::default());
        let asset = &ASSETS[1];
        let mut headers = HeaderMap::new();
        let tag = etag(asset.body);
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("x")),
        );
        assert_eq!(
            serve(asset, &headers, &security).status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            serve(asset, &HeaderMap::new(), &security).status(),
            StatusCode::OK
        );
    }
}
