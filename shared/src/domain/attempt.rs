//! One HTTP try of a delivery, and how it failed.

use serde::{Deserialize, Serialize};

/// Why an attempt failed, as the API names the kinds (`docs/openapi.yaml`, `AttemptError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptErrorKind {
    /// No complete answer within the total (or connect) timeout.
    Timeout,
    /// TCP connection refused, reset or otherwise failed.
    Connect,
    /// TLS handshake or certificate failure.
    Tls,
    /// The host name did not resolve.
    Dns,
    /// Every address of the target is in a range the SSRF rules refuse.
    BlockedAddress,
    /// A 3xx answer: redirects are never followed.
    Redirect,
    /// Any other non-2xx status.
    HttpStatus,
}

impl AttemptErrorKind {
    /// As the API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptErrorKind::Timeout => "timeout",
            AttemptErrorKind::Connect => "connect",
            AttemptErrorKind::Tls => "tls",
            AttemptErrorKind::Dns => "dns",
            AttemptErrorKind::BlockedAddress => "blocked_address",
            AttemptErrorKind::Redirect => "redirect",
            AttemptErrorKind::HttpStatus => "http_status",
        }
    }
}

/// `{"kind": "...", "message": "..."}` in the API; the message is short and never holds
/// a secret or a response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptError {
    pub kind: AttemptErrorKind,
    pub message: String,
}

impl AttemptError {
    pub fn new(kind: AttemptErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// What one POST to a receiver came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostOutcome {
    /// `None` on a network error.
    pub status: Option<u16>,
    /// The receiver's `Retry-After`, parsed (any status; only 429/503 use it).
    pub retry_after: Option<std::time::Duration>,
    /// The start of the answer, as text (up to `RESPONSE_BODY_CAP` bytes are read; the
    /// delivery keeps `KEPT_BODY_BYTES` of the latest attempt's).
    pub response_body: String,
    /// `None` exactly when the answer was 2xx.
    pub error: Option<AttemptError>,
    pub duration: std::time::Duration,
}
