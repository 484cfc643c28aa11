//! Field rules and limits (`docs/API.md`, "Limits"), as pure functions.

use std::net::IpAddr;
use thiserror::Error;
use url::{Host, Url};

pub const MAX_URL_LEN: usize = 2048;
pub const MAX_DESCRIPTION_CHARS: usize = 256;
pub const MAX_EVENT_TYPES: usize = 50;
pub const MAX_EVENT_TYPE_LEN: usize = 100;
pub const MAX_ENDPOINTS_PER_ORG: usize = 100;
/// The 422 message for a malformed event type, with the grammar as `docs/API.md` writes it.
pub const EVENT_TYPE_RULE: &str =
    r"must match [a-z0-9_]+(\.[a-z0-9_]+)* and be at most 100 characters";

/// A value that breaks a rule; `field` names the culprit in the API's 422 answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An endpoint URL: https, a real host, no credentials or fragment, at most 2048
/// characters. Returns the URL in the normalised form the sender will request (what is
/// validated is exactly what is sent): the WHATWG parser would otherwise silently drop
/// tabs and newlines, trim spaces and read `\\` as `/`, so such input is refused rather
/// than reinterpreted.
///
/// Whether the host's addresses may be reached is decided at connect time by the sender
/// (after DNS), not here: a name can change what it resolves to after registration.
pub fn endpoint_url(raw: &str) -> Result<String, ValidationError> {
    let err = |m: &str| ValidationError::new("url", m);
    if raw.chars().count() > MAX_URL_LEN {
        return Err(err("must be at most 2048 characters"));
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(err(
            "must not contain spaces, tabs, line breaks or control characters",
        ));
    }
    if raw.contains('\\') {
        return Err(err("must not contain backslashes"));
    }
    let url = Url::parse(raw).map_err(|_| err("must be an absolute https:// URL"))?;
    if url.scheme() != "https" {
        return Err(err("must start with https://"));
    }
    // Any `@` in the authority, even with empty user-info the parser would drop.
    let authority = raw
        .split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?', '#']).next())
        .unwrap_or_default();
    if authority.contains('@') || !url.username().is_empty() || url.password().is_some() {
        return Err(err("must not carry credentials"));
    }
    if url.fragment().is_some() {
        return Err(err("must not have a #fragment"));
    }
    match url.host() {
        None => return Err(err("must name a host")),
        Some(Host::Domain(domain)) if !is_real_domain(domain) => {
            return Err(err("must name a real host"));
        }
        // 0.0.0.0/8 means "this host" or "this network", never a receiver.
        Some(Host::Ipv4(ip)) if ip.octets()[0] == 0 || ip.is_broadcast() => {
            return Err(err("must name a real host"));
        }
        Some(Host::Ipv6(ip)) if IpAddr::V6(ip).is_unspecified() => {
            return Err(err("must name a real host"));
        }
        Some(_) => {}
    }
    // The limit counts the characters given; the stored form may be longer where
    // non-ASCII characters are percent-encoded or a name becomes punycode.
    Ok(String::from(url))
}

/// A syntactically valid DNS name: dot-separated LDH labels, or `localhost` for local runs.
fn is_real_domain(domain: &str) -> bool {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain == "localhost" {
        return true;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()))
}

pub fn description(raw: &str) -> Result<String, ValidationError> {
    if raw.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ValidationError::new(
            "description",
            "must be at most 256 characters",
        ));
    }
    Ok(raw.to_owned())
}

/// `[a-z0-9_]+(\.[a-z0-9_]+)*`, at most 100 characters.
pub fn is_valid_event_type(s: &str) -> bool {
    s.len() <= MAX_EVENT_TYPE_LEN
        && s.split('.').all(|segment| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

/// 1–50 distinct, well-formed event types.
pub fn event_types(list: Vec<String>) -> Result<Vec<String>, ValidationError> {
    if list.is_empty() {
        return Err(ValidationError::new(
            "event_types",
            "must contain at least one event type",
        ));
    }
    if list.len() > MAX_EVENT_TYPES {
        return Err(ValidationError::new(
            "event_types",
            "must contain at most 50 event types",
        ));
    }
    for (i, t) in list.iter().enumerate() {
        if !is_valid_event_type(t) {
            return Err(ValidationError::new(
                format!("event_types[{i}]"),
                EVENT_TYPE_RULE,
            ));
        }
        if list[..i].contains(t) {
            return Err(ValidationError::new(
                format!("event_types[{i}]"),
                "is listed twice",
            ));
        }
    }
    Ok(list)
}

/// Organisation slugs: 1–64 of `[a-z0-9_-]`, starting with a letter or digit. Checked
/// where keys are minted, so a slug can never break the table's `ORG#<slug>` keys.
pub fn org_slug(raw: &str) -> Result<&str, ValidationError> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw.as_bytes()[0].is_ascii_alphanumeric()
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(raw)
    } else {
        Err(ValidationError::new(
            "org",
            "must be 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for ok in [
            "https://example.com/hook",
            "https://hooks.example.co.uk:8443/a/b?x=1",
            "https://127.0.0.1:9000/",
            "https://[::1]/x",
            "https://localhost/x",
        ] {
            assert_eq!(endpoint_url(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in [
            "http://example.com/",
            "ftp://example.com/",
            "example.com",
            "https://",
            "https:///path",
            "https://user:pw@example.com/",
            "https://example.com/#frag",
            "https://nodots/",
            "https://-bad-.com/",
            "https://0.0.0.0/",
            "https://0.0.0.6/",
            "https://@6/",
            "https://@example.com/",
            "https://:@example.com/",
            "https://[::]/",
            "https://exa mple.com/",
        ] {
            let e = endpoint_url(bad).expect_err(bad);
            assert_eq!(e.field, "url");
        }
        for (given, stored) in [
            ("https://EXAMPLE.com", "https://example.com/"),
            ("https://example.com:443/a/../b", "https://example.com/b"),
            (
                "https://example.com/ü?q=ä",
                "https://example.com/%C3%BC?q=%C3%A4",
            ),
            (
                "https://bücher.example/x",
                "https://xn--bcher-kva.example/x",
            ),
        ] {
            assert_eq!(endpoint_url(given).as_deref(), Ok(stored), "{given}");
        }
        for bad in [
            "https://local\thost:8443/x",
            "https://example.com/a\nb",
            "https://example.com/a\rb",
            " https://example.com/",
            "https://example.com/ ",
            "https://example.com/\n",
            "https://example.com/a\u{a0}b",
            "https://example.com/a\u{2028}b",
            "https://example.com/a\u{7f}b",
            "https://example.com/a\u{0}b",
            "https://example.com\\@evil.example.com/",
            "https:\\\\example.com/",
        ] {
            let e = endpoint_url(bad).expect_err(bad);
            assert_eq!(e.field, "url", "{bad}");
        }
        // 2048 characters, more bytes: the limit counts characters.
        let wide = format!("https://example.com/{}", "é".repeat(2048 - 20));
        assert_eq!(wide.chars().count(), 2048);
        assert!(wide.len() > 2048);
        assert!(endpoint_url(&wide).is_ok());
        assert!(endpoint_url(&format!("{wide}é")).is_err());
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert!(endpoint_url(&long).is_err());
        let just_fits = format!("https://example.com/{}", "a".repeat(2048 - 20));
        assert_eq!(just_fits.len(), 2048);
        assert!(endpoint_url(&just_fits).is_ok());
    }

    #[test]
    fn descriptions_count_characters_not_bytes() {
        assert!(description(&"é".repeat(256)).is_ok());
        assert!(description(&"a".repeat(257)).is_err());
    }

    #[test]
    fn event_type_grammar() {
        for ok in ["alert.fired", "a", "a_b.c_d.e9", "x".repeat(100).as_str()] {
            assert!(is_valid_event_type(ok), "{ok}");
        }
        for bad in [
            "",
            "Alert.fired",
            "alert..fired",
            ".alert",
            "alert.",
            "alert-fired",
            "alert fired",
            "x".repeat(101).as_str(),
        ] {
            assert!(!is_valid_event_type(bad), "{bad}");
        }
    }

    #[test]
    fn event_type_lists() {
        assert_eq!(event_types(vec![]).expect_err("empty").field, "event_types");
        let many: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
        assert_eq!(event_types(many).expect_err("51").field, "event_types");
        let fifty: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
        assert!(event_types(fifty).is_ok());
        let e = event_types(vec!["ok".into(), "Bad".into()]).expect_err("bad");
        assert_eq!(e.field, "event_types[1]");
        assert!(
            e.message.contains(r"[a-z0-9_]+(\.[a-z0-9_]+)*"),
            "{}",
            e.message
        );
        let e = event_types(vec!["a".into(), "b".into(), "a".into()]).expect_err("dup");
        assert_eq!(e.field, "event_types[2]");
    }

    #[test]
    fn org_slugs() {
        for ok in ["demo", "acme-corp", "a", "org_1"] {
            assert!(org_slug(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Demo", "-x", "a#b", "a/b", &"a".repeat(65)] {
            assert!(org_slug(bad).is_err(), "{bad}");
        }
    }
}
