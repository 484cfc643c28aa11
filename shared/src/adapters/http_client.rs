//! The sender's outbound HTTP client: one POST per attempt, SSRF-guarded.
//!
//! - **Address guard.** [`TargetPolicy`] refuses loopback, private, link-local (cloud
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

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use thiserror::Error;
use tokio::time::Instant;
use url::{Host, Url};

use crate::domain::{AttemptError, AttemptErrorKind};
use crate::ports::WebhookTransport;

/// How much of a response body is read (SPEC: "read up to a cap and stored truncated");
/// the delivery keeps the first `KEPT_BODY_BYTES` of it.
pub const RESPONSE_BODY_CAP: usize = 4096;

/// Settings for [`OutboundClient::new`]; built once per cold start.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Ranges exempt from the address guard (`ALLOWED_TARGET_CIDRS`; empty by default).
    pub allowed: Vec<IpNet>,
    /// PEM files whose certificates are trusted besides the system's roots, and pinned
    /// (see [`PinningVerifier`]).
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

/// Why [`OutboundClient::new`] failed.
#[derive(Debug, Error)]
pub enum OutboundBuildError {
    /// An extra root certificate file could not be read or holds no usable certificate.
    #[error("root certificate file {}: {reason}", path.display())]
    RootCert { path: PathBuf, reason: String },
    /// The HTTP client itself could not be built (e.g. an invalid User-Agent).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// What one POST did (defined in the domain; re-exported here). `error` is `None`
/// exactly when the status is 2xx; `response_body` holds at most [`RESPONSE_BODY_CAP`]
/// bytes of the body as lossy UTF-8 (a multi-byte character cut by the cap is dropped).
pub use crate::domain::PostOutcome;

fn failed(kind: AttemptErrorKind, message: impl Into<String>) -> PostOutcome {
    PostOutcome {
        status: None,
        retry_after: None,
        response_body: String::new(),
        error: Some(AttemptError::new(kind, message)),
        duration: Duration::ZERO,
    }
}

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

    /// The address policy this client enforces.
    pub fn policy(&self) -> &TargetPolicy {
        &self.policy
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

        let error = match status {
            200..=299 => None,
            300..=399 => Some(AttemptError::new(
                K::Redirect,
                format!("HTTP {status}: redirects are not followed"),
            )),
            _ => Some(AttemptError::new(K::HttpStatus, format!("HTTP {status}"))),
        };
        PostOutcome {
            status: Some(status),
            retry_after,
            response_body: lossy_text(&kept),
            error,
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

fn blocked_error(range: BlockedRange) -> AttemptError {
    AttemptError::new(
        AttemptErrorKind::BlockedAddress,
        format!("target address is in a refused range ({})", range.name),
    )
}

/// Reads one PEM file of certificates, checking each one is a usable trust anchor.
fn load_root_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, OutboundBuildError> {
    use rustls::pki_types::pem::PemObject;

    let fail = |reason: String| OutboundBuildError::RootCert {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let ders = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("not valid PEM: {e}")))?;
    if ders.is_empty() {
        return Err(fail("holds no PEM certificate".into()));
    }
    for der in &ders {
        rustls::RootCertStore::empty()
            .add(der.clone())
            .map_err(|e| fail(format!("not a usable root certificate: {e}")))?;
    }
    Ok(ders)
}

/// The sender's TLS settings: HTTP/1.1, and certificates checked by [`PinningVerifier`].
fn tls_config(
    extra: Vec<CertificateDer<'static>>,
    roots_only: Vec<CertificateDer<'static>>,
) -> Result<ClientConfig, OutboundBuildError> {
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let verifier = PinningVerifier::new(extra, roots_only, provider.clone())
        .map_err(|e| OutboundBuildError::Client(format!("TLS verifier: {e}")))?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| OutboundBuildError::Client(format!("TLS versions: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Trusts what the platform verifier does (the system's roots, plus the extra
/// certificates as roots, so chains signed by a given CA verify, as mkcert makes them),
/// and also a server that presents exactly one of the extra certificates as its own.
///
/// The second case is the certificate `openssl req -x509` makes by default:
/// self-signed and marked `CA:TRUE`. WebPKI refuses a CA certificate as a server's
/// certificate (`CaUsedAsEndEntity`), however it is trusted, so such a certificate is
/// pinned instead: trusted byte for byte, for that server's handshake only, whatever host
/// name the URL uses and whatever its validity dates say (like an SSH host key), because
/// only a server holding its private key can present it. Configure only certificates of
/// receivers you control this way.
#[derive(Debug)]
pub struct PinningVerifier {
    pinned: Vec<CertificateDer<'static>>,
    roots: rustls_platform_verifier::Verifier,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl PinningVerifier {
    /// `extra` are trusted as roots and pinned; `roots_only` as roots alone.
    pub fn new(
        extra: Vec<CertificateDer<'static>>,
        roots_only: Vec<CertificateDer<'static>>,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Self, rustls::Error> {
        let roots = rustls_platform_verifier::Verifier::new_with_extra_roots(
            extra.iter().cloned().chain(roots_only),
            provider.clone(),
        )?;
        Ok(Self {
            pinned: extra,
            roots,
            provider,
        })
    }
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|pin| pin.as_ref() == end_entity.as_ref())
        {
            return Ok(ServerCertVerified::assertion());
        }
        self.roots
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    // The handshake signature is checked with the certificate's key in every case: a
    // pinned certificate proves nothing unless the server holds its private key.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

// ---------------------------------------------------------------------------------------
// Address policy

/// A refused range that matched an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockedRange {
    /// The refused range. For an address that embeds an IPv4 (IPv4-mapped, NAT64), the
    /// IPv4 range that refused the embedded address.
    pub range: IpNet,
    /// What the range is, e.g. `loopback`.
    pub name: &'static str,
}

impl fmt::Display for BlockedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.range)
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(s: [u16; 8], len: u8) -> Ipv6Net {
    Ipv6Net::new_assert(
        Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
        len,
    )
}

/// IPv4 ranges refused unless allowed (IANA special-purpose registry, non-global ones).
const REFUSED_V4: &[(Ipv4Net, &str)] = &[
    (v4(0, 0, 0, 0, 8), "this network"),
    (v4(10, 0, 0, 0, 8), "private"),
    (v4(100, 64, 0, 0, 10), "shared address space (CGNAT)"),
    (v4(127, 0, 0, 0, 8), "loopback"),
    (v4(169, 254, 0, 0, 16), "link-local (cloud metadata)"),
    (v4(172, 16, 0, 0, 12), "private"),
    (v4(192, 0, 0, 0, 24), "IETF protocol assignments"),
    (v4(192, 0, 2, 0, 24), "documentation"),
    (v4(192, 88, 99, 0, 24), "6to4 relay anycast"),
    (v4(192, 168, 0, 0, 16), "private"),
    (v4(198, 18, 0, 0, 15), "benchmarking"),
    (v4(198, 51, 100, 0, 24), "documentation"),
    (v4(203, 0, 113, 0, 24), "documentation"),
    (v4(224, 0, 0, 0, 4), "multicast"),
    (v4(240, 0, 0, 0, 4), "reserved"),
];

/// NAT64 well-known prefix (RFC 6052): the IPv4 is in the last 32 bits.
const NAT64_WELL_KNOWN: Ipv6Net = v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);
/// Local-use NAT64 prefix (RFC 8215): operators pick a /48../96 inside it.
const NAT64_LOCAL: Ipv6Net = v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48);
/// All IPv6 global unicast; everything outside it is special or unassigned.
const GLOBAL_UNICAST_V6: Ipv6Net = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);

/// IPv6 ranges refused unless allowed. IPv4-mapped addresses and NAT64 are handled
/// before this table (by their embedded IPv4), and anything outside 2000::/3 not listed
/// here is refused as reserved.
const REFUSED_V6: &[(Ipv6Net, &str)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified"),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback"),
    (
        v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
        "IPv4-compatible (deprecated)",
    ),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "discard-only"),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "documentation"),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), "Teredo"),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        "IETF protocol assignments",
    ),
    (v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), "6to4"),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), "documentation"),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), "unique local"),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "site-local (deprecated)",
    ),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
];

/// Which target addresses the sender may connect to. Pure: no I/O.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    allowed: Vec<IpNet>,
}

impl TargetPolicy {
    /// A policy that exempts the `allowed` ranges (e.g. loopback for tests and local runs).
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self { allowed }
    }

    /// The exempt ranges.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }

    /// `Ok` if the sender may connect to `ip`, else the refused range it is in.
    ///
    /// An address inside an allowed range passes; so does an IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`, which the kernel connects as the IPv4) whose IPv4 passes.
    /// NAT64 addresses are judged by their embedded IPv4 (without the exemptions: the
    /// exemption names what the operator allowed, not a translator's view of it).
    pub fn check(&self, ip: IpAddr) -> Result<(), BlockedRange> {
        if self.allowed.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match ip {
            IpAddr::V4(v4) => refused_v4(v4).map_or(Ok(()), Err),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => self.check(IpAddr::V4(v4)),
                None => refused_v6(v6).map_or(Ok(()), Err),
            },
        }
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<BlockedRange> {
    REFUSED_V4
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(net, name)| BlockedRange {
            range: IpNet::V4(*net),
            name,
        })
}

fn refused_v6(ip: Ipv6Addr) -> Option<BlockedRange> {
    let o = ip.octets();
    if NAT64_WELL_KNOWN.contains(&ip) {
        return refused_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    if NAT64_LOCAL.contains(&ip) {
        // Where the IPv4 sits depends on the prefix length the operator chose inside the
        // /48 (RFC 6052 layouts; octet 8 is the reserved "u" octet), which we can't know:
        // refuse if any reading is refused. In practice this refuses most of the prefix
        // (zero bits read as 0.0.0.0); a deployment behind a local-use NAT64 allows its
        // prefix with ALLOWED_TARGET_CIDRS.
        let readings = [
            [o[6], o[7], o[9], o[10]],    // /48
            [o[7], o[9], o[10], o[11]],   // /56
            [o[9], o[10], o[11], o[12]],  // /64
            [o[12], o[13], o[14], o[15]], // /96
        ];
        return readings
            .into_iter()
            .find_map(|[a, b, c, d]| refused_v4(Ipv4Addr::new(a, b, c, d)));
    }
    if let Some((net, name)) = REFUSED_V6.iter().find(|(net, _)| net.contains(&ip)) {
        return Some(BlockedRange {
            range: IpNet::V6(*net),
            name,
        });
    }
    if !GLOBAL_UNICAST_V6.contains(&ip) {
        return Some(BlockedRange {
            range: IpNet::V6(GLOBAL_UNICAST_V6),
            name: "reserved (outside global unicast 2000::/3)",
        });
    }
    None
}

// ---------------------------------------------------------------------------------------
// Resolver: the connect-time guard

/// Every address the name resolved to is refused.
#[derive(Debug, Error)]
#[error("every address of the host is in a refused range ({0})")]
struct AllAddressesRefused(BlockedRange);

/// The name did not resolve (or resolved to nothing).
#[derive(Debug, Error)]
#[error("host name did not resolve")]
struct NameNotResolved;

/// Resolves with the system resolver, then keeps only addresses the policy lets through.
/// reqwest connects only to what this returns, so the check happens after DNS, on the
/// very addresses connected to.
struct GuardedResolver {
    policy: Arc<TargetPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(guarded_lookup(
            self.policy.clone(),
            name.as_str().to_owned(),
        ))
    }
}

async fn guarded_lookup(
    policy: Arc<TargetPolicy>,
    host: String,
) -> Result<Addrs, Box<dyn StdError + Send + Sync>> {
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
        .await
        .map_err(|_| NameNotResolved)?
        .collect();
    let (kept, refused) = filter_addrs(&policy, resolved);
    if kept.is_empty() {
        return Err(match refused {
            Some(range) => AllAddressesRefused(range).into(),
            None => NameNotResolved.into(),
        });
    }
    Ok(Box::new(kept.into_iter()))
}

/// Splits resolved addresses into the ones allowed and (the first) refused range seen.
fn filter_addrs(
    policy: &TargetPolicy,
    resolved: Vec<SocketAddr>,
) -> (Vec<SocketAddr>, Option<BlockedRange>) {
    let mut refused = None;
    let kept = resolved
        .into_iter()
        .filter(|addr| match policy.check(addr.ip()) {
            Ok(()) => true,
            Err(range) => {
                refused.get_or_insert(range);
                false
            }
        })
        .collect();
    (kept, refused)
}

// ---------------------------------------------------------------------------------------
// Error classification

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
fn classify(error: &reqwest::Error, total: Duration, connect: Duration) -> AttemptError {
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
fn error_chain_text(error: &(dyn StdError + 'static)) -> String {
    let mut parts = Vec::new();
    visit_chain(error, &mut |e| {
        let text = e.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
    });
    parts.join(": ")
}

// ---------------------------------------------------------------------------------------
// Small parsers

/// Lossy UTF-8, but a multi-byte character cut off at the end (by the cap) is dropped
/// instead of turning into U+FFFD.
fn lossy_text(bytes: &[u8]) -> String {
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
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    use chrono::{DateTime, NaiveDateTime, Utc};

    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: too many of them just means "very long".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let when: DateTime<Utc> = if let Ok(date) = DateTime::parse_from_rfc2822(value) {
        date.with_timezone(&Utc)
    } else {
        ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
            .iter()
            .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())?
            .and_utc()
    };
    let when = SystemTime::from(when);
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    fn refused(text: &str) -> bool {
        TargetPolicy::default().check(ip(text)).is_err()
    }

    #[test]
    fn refused_addresses() {
        let cases = [
            // IPv4, each range and its edges
            "0.0.0.0",
            "0.255.255.255",
            "10.0.0.0",
            "10.255.255.255",
            "100.64.0.0",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "169.254.0.1",
            "172.16.0.0",
            "172.31.255.255",
            "192.0.0.0",
            "192.0.0.170",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.0.1",
            "192.168.255.255",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            // IPv6 special blocks
            "::",
            "::1",
            "::127.0.0.1",
            "::8.8.8.8",
            "100::1",
            "100::ffff:ffff:ffff:ffff",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:1::1",
            "2001:1ff:ffff::1",
            "2001:db8::1",
            "2001:db8:ffff:ffff::1",
            "2002::1",
            "2002:c000:0204::1",
            "2002:5db8:d822::1",
            "3fff::1",
            "3fff:fff:ffff::1",
            "fc00::1",
            "fd12:3456:789a::1",
            "fe80::1",
            "febf:ffff::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            // outside 2000::/3
            "4000::1",
            "1::1",
            // IPv4-mapped
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
            // IPv4-translated (SIIT), outside 2000::/3
            "::ffff:0:7f00:1",
            // NAT64 with a refused IPv4
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::10.0.0.1",
            "64:ff9b:1::10.0.0.1",
            "64:ff9b:1:7f00:0:100::",
            // NAT64 local: a public /96 reading but loopback in the /48 layout
            "64:ff9b:1:7f00:0:100:5db8:d822",
        ];
        let wrongly_allowed: Vec<_> = cases.iter().filter(|c| !refused(c)).collect();
        assert!(wrongly_allowed.is_empty(), "allowed: {wrongly_allowed:?}");
    }

    #[test]
    fn public_addresses_pass() {
        let cases = [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450:4001:80b::200e",
            "2001:200::1",
            "2001:4860:4860::8888",
            "2003::1",
            "3ffe::1",
            "::ffff:93.184.216.34",
            "64:ff9b::93.184.216.34",
            "64:ff9b::808:808",
        ];
        for case in cases {
            assert_eq!(
                TargetPolicy::default().check(ip(case)),
                Ok(()),
                "{case} should pass"
            );
        }
    }

    #[test]
    fn blocked_range_names_the_range() {
        let policy = TargetPolicy::default();
        let range = policy.check(ip("169.254.169.254")).expect_err("metadata");
        assert_eq!(range.range, "169.254.0.0/16".parse::<IpNet>().expect("net"));
        assert_eq!(
            range.to_string(),
            "link-local (cloud metadata) (169.254.0.0/16)"
        );
        let mapped = policy.check(ip("::ffff:127.0.0.1")).expect_err("mapped");
        assert_eq!(mapped.name, "loopback");
        assert_eq!(mapped.range, "127.0.0.0/8".parse::<IpNet>().expect("net"));
        let teredo = policy.check(ip("2001::1")).expect_err("teredo");
        assert_eq!(teredo.name, "Teredo");
    }

    #[test]
    fn odd_ipv4_spellings_normalise_to_loopback_and_are_refused() {
        let policy = TargetPolicy::default();
        for spelling in [
            "https://2130706433/",
            "https://0x7f.1/",
            "https://0x7f000001/",
            "https://017700000001/",
            "https://0177.0.0.1/",
            "https://127.1/",
            "https://127.0.1/",
            "https://127.000.000.001/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
        ] {
            let url = Url::parse(spelling).expect("parses");
            let host = match url.host() {
                Some(Host::Ipv4(v4)) => {
                    assert_eq!(v4, Ipv4Addr::LOCALHOST, "{spelling}");
                    IpAddr::V4(v4)
                }
                Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
                other => panic!("{spelling} parsed as {other:?}"),
            };
            assert!(policy.check(host).is_err(), "{spelling} must be refused");
        }
        // Not numbers at all: stays a name (and goes through the resolver).
        let url = Url::parse("https://127.0.0.1.nip.io/").expect("parses");
        assert!(matches!(url.host(), Some(Host::Domain(_))));
    }

    #[test]
    fn allowed_ranges_exempt() {
        let policy = TargetPolicy::new(vec![
            "127.0.0.0/8".parse().expect("net"),
            "10.1.0.0/16".parse().expect("net"),
            "fd00::/8".parse().expect("net"),
        ]);
        for allowed in [
            "127.0.0.1",
            "127.9.9.9",
            "10.1.2.3",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.255.255",
        ] {
            assert_eq!(policy.check(ip(allowed)), Ok(()), "{allowed}");
        }
        for still_refused in [
            "10.2.0.1",
            "::1",
            "169.254.169.254",
            "fc00::1",
            "::ffff:10.2.0.1",
            // NAT64 of an allowed IPv4 is not exempt.
            "64:ff9b::127.0.0.1",
        ] {
            assert!(policy.check(ip(still_refused)).is_err(), "{still_refused}");
        }
        let v6_loopback = TargetPolicy::new(vec!["::1/128".parse().expect("net")]);
        assert_eq!(v6_loopback.check(ip("::1")), Ok(()));
        assert!(v6_loopback.check(ip("127.0.0.1")).is_err());
    }

    #[test]
    fn resolver_filter_keeps_allowed_and_reports_refused() {
        let policy = TargetPolicy::default();
        let addrs: Vec<SocketAddr> = ["127.0.0.1:0", "93.184.216.34:0", "[::1]:0"]
            .iter()
            .map(|a| a.parse().expect("addr"))
            .collect();
        let (kept, refused) = filter_addrs(&policy, addrs);
        assert_eq!(
            kept,
            vec!["93.184.216.34:0".parse::<SocketAddr>().expect("addr")]
        );
        assert_eq!(refused.map(|r| r.name), Some("loopback"));

        let (kept, refused) = filter_addrs(&policy, vec!["[::1]:0".parse().expect("addr")]);
        assert!(kept.is_empty());
        assert!(refused.is_some());
    }

    #[tokio::test]
    async fn resolver_fails_recognisably() {
        let resolver = GuardedResolver {
            policy: Arc::new(TargetPolicy::default()),
        };
        let name: Name = "localhost".parse().expect("name");
        let error = match resolver.resolve(name).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(error) => error,
        };
        assert!(error.is::<AllAddressesRefused>());

        let allowing = GuardedResolver {
            policy: Arc::new(TargetPolicy::new(vec!["127.0.0.0/8".parse().expect("net")])),
        };
        let name: Name = "localhost".parse().expect("name");
        let addrs: Vec<_> = match allowing.resolve(name).await {
            Ok(addrs) => addrs.collect(),
            Err(error) => panic!("localhost allowed: {error}"),
        };
        assert!(addrs.iter().any(|a| a.ip() == ip("127.0.0.1")));
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_loopback() || a.ip() == ip("::1"))
        );
    }

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

    #[test]
    fn config_defaults() {
        let config = OutboundConfig::default();
        assert_eq!(config.total_timeout, Duration::from_secs(15));
        assert_eq!(config.connect_timeout, Duration::from_secs(5));
        assert!(config.allowed.is_empty());
        assert!(config.user_agent.starts_with("AgentVista-Webhooks/"));
    }

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
