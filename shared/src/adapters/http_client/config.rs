//! What the outbound client is built from, and why building it can fail.

use ipnet::IpNet;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// Settings for `OutboundClient::new`; built once per cold start.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Ranges exempt from the address guard (`ALLOWED_TARGET_CIDRS`; empty by default).
    pub allowed: Vec<IpNet>,
    /// PEM files whose certificates are trusted besides the system's roots, and pinned
    /// (see `PinningVerifier`).
    pub extra_root_certs: Vec<PathBuf>,
    /// PEM files of CAs trusted as roots only, never pinned, so their name constraints
    /// always hold (the local development CA of `webhooks-local listen`).
    pub constrained_roots: Vec<PathBuf>,
    /// One deadline for the whole attempt, DNS to body read (default 15 s).
    pub total_timeout: Duration,
    /// TCP connect timeout (default 5 s).
    pub connect_timeout: Duration,
    /// `User-Agent` sent with every request (a header given to `post` wins).
    pub user_agent: String,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            allowed: Vec::new(),
            extra_root_certs: Vec::new(),
            constrained_roots: Vec::new(),
            total_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            user_agent: format!("AgentVista-Webhooks/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Why `OutboundClient::new` failed.
#[derive(Debug, Error)]
pub enum OutboundBuildError {
    /// An extra root certificate file could not be read or holds no usable certificate.
    #[error("root certificate file {}: {reason}", path.display())]
    RootCert { path: PathBuf, reason: String },
    /// The HTTP client itself could not be built (e.g. an invalid User-Agent).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults() {
        let config = OutboundConfig::default();
        assert_eq!(config.total_timeout, Duration::from_secs(15));
        assert_eq!(config.connect_timeout, Duration::from_secs(5));
        assert!(config.allowed.is_empty());
        assert!(config.user_agent.starts_with("AgentVista-Webhooks/"));
    }
}
