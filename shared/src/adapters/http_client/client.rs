//! The client that ties the guard, the trust and the classification together: one POST
//! per attempt, under one deadline, its body read up to a cap.

use super::config::{OutboundBuildError, OutboundConfig};
use super::outcome::{
    blocked_error, classify, error_chain_text, failed, lossy_text, parse_retry_after, status_error,
};
use super::ssrf_guard::{GuardedResolver, TargetPolicy};
use super::tls::{load_root_certs, tls_config};
use crate::domain::{AttemptError, AttemptErrorKind, PostOutcome};
use crate::ports::WebhookTransport;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;
use url::{Host, Url};

/// How much of a response body is read (SPEC: "read up to a cap and stored truncated");
/// the delivery keeps the first `KEPT_BODY_BYTES` of it.
pub const RESPONSE_BODY_CAP: usize = 4096;

/// The sender's HTTP client. Cheap to clone (shares one connection pool).
#[derive(Debug, Clone)]
pub struct OutboundClient {
    client: reqwest::Client,
    policy: Arc<TargetPolicy>,
    total_timeout: Duration,
    connect_timeout: Duration,
}

impl OutboundClient {
    /// Builds the client: the guarded resolver, no proxies, no redirects, no retries,
    /// the extra certificates trusted besides the system's roots ([`PinningVerifier`]).
    pub fn new(config: OutboundConfig) -> Result<Self, OutboundBuildError> {
        let mut extra = Vec::new();
        for path in &config.extra_root_certs {
            extra.extend(load_root_certs(path)?);
        }
        let mut roots_only = Vec::new();
        for path in &config.constrained_roots {
            roots_only.extend(load_root_certs(path)?);
        }
        let policy = Arc::new(TargetPolicy::new(config.allowed));
        let client = reqwest::Client::builder()
            .dns_resolver(GuardedResolver {
                policy: policy.clone(),
            })
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .https_only(true)
            .tls_backend_preconfigured(tls_config(extra, roots_only)?)
            .connect_timeout(config.connect_timeout)
            .timeout(config.total_timeout)
            .user_agent(config.user_agent)
            .build()
            .map_err(|e| OutboundBuildError::Client(error_chain_text(&e)))?;
        Ok(Self {
            client,
            policy,
            total_timeout: config.total_timeout,
            connect_timeout: config.connect_timeout,
        })
    }

    /// POSTs `body` with `headers` to `url`, once. Never panics and never takes (much)
    /// longer than the total timeout; every failure is described in the outcome.
    pub async fn post(&self, url: &str, headers: &[(&str, String)], body: Bytes) -> PostOutcome {
        let started = Instant::now();
        let deadline = started + self.total_timeout;
        let mut outcome = self.post_until(deadline, url, headers, body).await;
        outcome.duration = started.elapsed();
        outcome
    }

    async fn post_until(
        &self,
        deadline: Instant,
        url: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> PostOutcome {
        use AttemptErrorKind as K;
        let url = match self.checked_url(url) {
            Ok(url) => url,
            Err(error) => return failed(error.kind, error.message),
        };
        let mut header_map = HeaderMap::with_capacity(headers.len());
        for (name, value) in headers {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) else {
                return failed(K::Connect, format!("invalid request header {name}"));
            };
            header_map.append(name, value);
        }

        let request = self.client.post(url).headers(header_map).body(body);
        let mut response = match tokio::time::timeout_at(deadline, request.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                let error = classify(&error, self.total_timeout, self.connect_timeout);
                return failed(error.kind, error.message);
            }
            Err(_elapsed) => {
                return failed(K::Timeout, self.timeout_message());
            }
        };

        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));

        // Read at most the cap, and only until the deadline; dropping `response` then
        // closes the connection with whatever is left unread.
        let mut kept = Vec::new();
        while kept.len() < RESPONSE_BODY_CAP {
            match tokio::time::timeout_at(deadline, response.chunk()).await {
                Ok(Ok(Some(chunk))) => {
                    let room = RESPONSE_BODY_CAP - kept.len();
                    kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                // The end, a broken body or the deadline: keep what arrived.
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => break,
            }
        }
        drop(response);

        PostOutcome {
            status: Some(status),
            retry_after,
            response_body: lossy_text(&kept),
            error: status_error(status),
            duration: Duration::ZERO,
        }
    }

    /// Parses the URL (with the same parser reqwest uses, so odd IPv4 spellings are
    /// normalised the same way), insists on https and checks an IP-literal host.
    fn checked_url(&self, raw: &str) -> Result<Url, AttemptError> {
        use AttemptErrorKind as K;
        let url = Url::parse(raw).map_err(|_| AttemptError::new(K::Connect, "invalid URL"))?;
        if url.scheme() != "https" {
            return Err(AttemptError::new(K::Connect, "only https:// URLs are sent"));
        }
        let ip = match url.host() {
            None => return Err(AttemptError::new(K::Connect, "URL has no host")),
            Some(Host::Domain(_)) => return Ok(url), // checked by the resolver
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
        };
        match self.policy.check(ip) {
            Ok(()) => Ok(url),
            Err(range) => Err(blocked_error(range)),
        }
    }

    fn timeout_message(&self) -> String {
        format!(
            "no complete answer within {} ms",
            self.total_timeout.as_millis()
        )
    }
}

#[async_trait::async_trait]
impl WebhookTransport for OutboundClient {
    async fn post(&self, url: &str, headers: &[(&str, String)], body: Bytes) -> PostOutcome {
        OutboundClient::post(self, url, headers, body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_root_cert_files_are_named() {
        let dir = std::env::temp_dir();
        let missing = dir.join("avw-http-client-missing.pem");
        let garbage = dir.join(format!(
            "avw-http-client-garbage-{}.pem",
            std::process::id()
        ));
        std::fs::write(&garbage, "not a certificate").expect("write");
        let bad_der = dir.join(format!(
            "avw-http-client-bad-der-{}.pem",
            std::process::id()
        ));
        std::fs::write(
            &bad_der,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        for path in [&missing, &garbage, &bad_der] {
            let error = OutboundClient::new(OutboundConfig {
                extra_root_certs: vec![path.clone()],
                constrained_roots: Vec::new(),
                ..OutboundConfig::default()
            })
            .expect_err("must fail");
            assert!(
                error.to_string().contains(&path.display().to_string()),
                "{error}"
            );
        }
        let _ = std::fs::remove_file(garbage);
        let _ = std::fs::remove_file(bad_der);
    }
}
