//! The sender's outbound HTTP client: one POST per attempt, SSRF-guarded. Split by job:
//! `ssrf_guard` (which addresses may be connected to, checked after DNS), `tls` (trust
//! and pinning), `outcome` (what a response or failure says about the attempt) and
//! `client`, which ties them together; `config` is what it is built from.
//!
//! - **Address guard.** `TargetPolicy` refuses loopback, private, link-local (cloud
//!   metadata), CGNAT, multicast, reserved and documentation ranges, IPv4-mapped IPv6
//!   and the other special IPv6 blocks, unless a range is allowed by configuration
//!   (`ALLOWED_TARGET_CIDRS`). It is enforced at connect time, after DNS: the client's
//!   resolver drops refused addresses and fails when none remain, so a name that
//!   resolves (or re-resolves, "DNS rebinding") to an internal address is never
//!   connected to. IP-literal URLs skip the resolver, so they are checked before sending.
//!   Proxies from the environment are ignored (a proxy would resolve the name instead).
//! - **Never more than one request.** Redirects are not followed (3xx is a `redirect`
//!   failure), reqwest's own retries are off (the sender has its schedule), only
//!   `https://` URLs are sent.
//! - **Bounded.** Everything, from DNS to the last byte of the response body read, runs
//!   under one deadline (`total_timeout`, 15 s by default); the body is read only up to
//!   [`RESPONSE_BODY_CAP`] bytes and the rest is dropped with the connection.
//!
//! Slow or endless response bodies: the attempt is judged by the status code. If the
//! status line arrived in time, the body read gets what is left of the deadline and then
//! stops, keeping what it has; so a `200` followed by an endless body is a success with a
//! truncated body (the receiver has answered; retrying would only duplicate the event),
//! and a body that never ends cannot hold the sender past the deadline.

mod client;
mod config;
mod outcome;
mod ssrf_guard;
mod tls;

/// What one POST did (defined in the domain; re-exported here). `error` is `None`
/// exactly when the status is 2xx; `response_body` holds at most [`RESPONSE_BODY_CAP`]
/// bytes of the body as lossy UTF-8 (a multi-byte character cut by the cap is dropped).
pub use crate::domain::PostOutcome;
pub use client::{OutboundClient, RESPONSE_BODY_CAP};
pub use config::{OutboundBuildError, OutboundConfig};
