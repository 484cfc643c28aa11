//! The sender's way out to receivers.

use crate::domain::PostOutcome;
use async_trait::async_trait;

/// The outbound HTTP client the sender posts through (SSRF-guarded in production).
#[async_trait]
pub trait WebhookTransport: Send + Sync {
    async fn post(&self, url: &str, headers: &[(&str, String)], body: bytes::Bytes) -> PostOutcome;
}
