//! What an attempt came to: the status judged, a failure classified into an
//! [`AttemptErrorKind`] with a fixed message, `Retry-After` read, the body kept as text.

use super::ssrf_guard::{AllAddressesRefused, BlockedRange, NameNotResolved};
use crate::domain::{AttemptError, AttemptErrorKind, PostOutcome};
use std::error::Error as StdError;
use std::time::{Duration, SystemTime};

/// An attempt that got no answer.
pub(super) fn failed(kind: AttemptErrorKind, message: impl Into<String>) -> PostOutcome {
    PostOutcome {
        status: None,
        retry_after: None,
        response_body: String::new(),
        error: Some(AttemptError::new(kind, message)),
        duration: Duration::ZERO,
    }
}

/// An address the guard refused, named by its range (never the address or the URL).
pub(super) fn blocked_error(range: BlockedRange) -> AttemptError {
    AttemptError::new(
        AttemptErrorKind::BlockedAddress,
        format!("target address is in a refused range ({})", range.name),
    )
}

/// What the status code says: 2xx succeeded; 3xx is a `redirect` failure (never
/// followed); anything else an `http_status` failure.
pub(super) fn status_error(status: u16) -> Option<AttemptError> {
    match status {
        200..=299 => None,
        300..=399 => Some(AttemptError::new(
            AttemptErrorKind::Redirect,
            format!("HTTP {status}: redirects are not followed"),
        )),
        _ => Some(AttemptError::new(
            AttemptErrorKind::HttpStatus,
            format!("HTTP {status}"),
        )),
    }
}

/// Calls `f` on `error` and everything under it, including the error an `io::Error`
/// wraps (which `io::Error::source` skips).
fn visit_chain(error: &(dyn StdError + 'static), f: &mut dyn FnMut(&(dyn StdError + 'static))) {
    let mut current = Some(error);
    while let Some(e) = current {
        f(e);
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            visit_chain(inner, f);
        }
        current = e.source();
    }
}

/// Maps a reqwest error to an attempt error. Messages are fixed phrases plus, for TLS,
/// rustls' own short description: never the URL (it may hold tokens) nor a body.
pub(super) fn classify(error: &reqwest::Error, total: Duration, connect: Duration) -> AttemptError {
    use AttemptErrorKind as K;
    let mut blocked = None;
    let mut dns = false;
    let mut tls = None;
    let mut io_kind = None;
    visit_chain(error, &mut |e| {
        if let Some(AllAddressesRefused(range)) = e.downcast_ref::<AllAddressesRefused>() {
            blocked.get_or_insert(*range);
        } else if e.is::<NameNotResolved>() {
            dns = true;
        } else if let Some(rustls_error) = e.downcast_ref::<rustls::Error>() {
            tls.get_or_insert_with(|| tls_phrase(rustls_error));
        } else if let Some(io) = e.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
        }
    });

    if let Some(range) = blocked {
        return blocked_error(range);
    }
    if dns {
        return AttemptError::new(K::Dns, "host name did not resolve");
    }
    if error.is_timeout() || io_kind == Some(std::io::ErrorKind::TimedOut) {
        return if error.is_connect() {
            AttemptError::new(
                K::Timeout,
                format!("connect timed out after {} ms", connect.as_millis()),
            )
        } else {
            AttemptError::new(
                K::Timeout,
                format!("no complete answer within {} ms", total.as_millis()),
            )
        };
    }
    if let Some(phrase) = tls {
        return AttemptError::new(K::Tls, format!("TLS: {phrase}"));
    }
    let message = match io_kind {
        Some(std::io::ErrorKind::ConnectionRefused) => "connection refused",
        // Connected, so the receiver may have had the request and acted on it.
        Some(std::io::ErrorKind::ConnectionReset) if !error.is_connect() => {
            "connection reset after the request was sent"
        }
        Some(std::io::ErrorKind::ConnectionReset) => "connection reset",
        Some(std::io::ErrorKind::ConnectionAborted) => "connection aborted",
        Some(std::io::ErrorKind::UnexpectedEof) => "connection closed unexpectedly",
        Some(std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable) => {
            "host unreachable"
        }
        _ if error.is_connect() => "connection failed",
        _ => "connection closed before a complete response",
    };
    AttemptError::new(K::Connect, message)
}

/// A fixed description of a TLS failure. rustls's own texts name the host and the
/// certificate's names (`not valid for name "..."`), which must not reach an attempt's
/// recorded error.
fn tls_phrase(error: &rustls::Error) -> &'static str {
    use rustls::CertificateError as C;
    match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer => "certificate issued by an authority that is not trusted",
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "certificate not valid for the URL's host name"
            }
            C::Expired | C::ExpiredContext { .. } => "certificate expired",
            C::NotValidYet | C::NotValidYetContext { .. } => "certificate not valid yet",
            C::Revoked => "certificate revoked",
            C::BadSignature => "certificate signature does not verify",
            C::BadEncoding => "certificate is malformed",
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                "certificate not meant for a TLS server"
            }
            _ => "certificate refused",
        },
        rustls::Error::AlertReceived(_) => "the receiver aborted the handshake",
        rustls::Error::PeerIncompatible(_) => "no TLS version or cipher suite in common",
        rustls::Error::NoCertificatesPresented => "the receiver presented no certificate",
        _ => "handshake failed",
    }
}

/// The chain's messages, for build errors (no URL is involved when building).
pub(super) fn error_chain_text(error: &(dyn StdError + 'static)) -> String {
    let mut parts = Vec::new();
    visit_chain(error, &mut |e| {
        let text = e.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
    });
    parts.join(": ")
}

/// Lossy UTF-8, but a multi-byte character cut off at the end (by the cap) is dropped
/// instead of turning into U+FFFD.
pub(super) fn lossy_text(bytes: &[u8]) -> String {
    let mut end = bytes.len();
    for i in (bytes.len().saturating_sub(3)..bytes.len()).rev() {
        let b = bytes[i];
        if b < 0x80 {
            break;
        }
        if b >= 0xC0 {
            let width = if b >= 0xF0 {
                4
            } else if b >= 0xE0 {
                3
            } else {
                2
            };
            if bytes.len() - i < width {
                end = i;
            }
            break;
        }
    }
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Parses a `Retry-After` value: delta-seconds (`120`) or an HTTP-date (IMF-fixdate, or
/// the obsolete RFC 850 and asctime forms), as a wait from `now`. A date in the past is
/// zero; anything else unparsable is `None`.
pub(super) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: too many of them just means "very long".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_failures_are_described_without_names() {
        use rustls::CertificateError as C;
        let name_mismatch = rustls::Error::InvalidCertificate(C::NotValidForNameContext {
            expected: rustls::pki_types::ServerName::try_from("secret-host.example")
                .expect("name")
                .to_owned(),
            presented: vec!["DnsName(\"other.example\")".into()],
        });
        let phrase = tls_phrase(&name_mismatch);
        assert_eq!(phrase, "certificate not valid for the URL's host name");
        assert!(!name_mismatch.to_string().contains(phrase));
        assert_eq!(
            tls_phrase(&rustls::Error::InvalidCertificate(C::UnknownIssuer)),
            "certificate issued by an authority that is not trusted"
        );
        assert_eq!(
            tls_phrase(&rustls::Error::General("at secret-host.example".into())),
            "handshake failed"
        );
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:51:37 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:50:37 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Sun Nov  6 08:49:47 1994", now),
            Some(Duration::from_secs(10))
        );
        // In the past: no wait.
        assert_eq!(
            parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in [
            "",
            "-5",
            "+5",
            "1.5",
            "soon",
            "Sun, 99 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn lossy_text_drops_a_cut_character() {
        assert_eq!(lossy_text(b"abc"), "abc");
        assert_eq!(lossy_text("aé".as_bytes()), "aé");
        assert_eq!(lossy_text(&"aé".as_bytes()[..2]), "a");
        assert_eq!(lossy_text(&"a€".as_bytes()[..3]), "a");
        assert_eq!(lossy_text(&"a😀".as_bytes()[..4]), "a");
        assert_eq!(lossy_text("a😀".as_bytes()), "a😀");
        assert_eq!(lossy_text(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(lossy_text(b""), "");
    }
}
