//! Whom the sender trusts: the system's roots, the configured extra certificates (as
//! roots and pinned, see [`PinningVerifier`]) and constrained roots (as roots only).

use super::config::OutboundBuildError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// Reads one PEM file of certificates, checking each one is a usable trust anchor.
pub(super) fn load_root_certs(
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, OutboundBuildError> {
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
pub(super) fn tls_config(
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
