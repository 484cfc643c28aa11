//! The certificates every receiver serves: a throw-away CA made with rcgen and one leaf
//! for `localhost`, `127.0.0.1` and `::1` that it issued.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// A test certificate authority and the TLS server side of its loopback leaf.
///
/// Receivers started with the same `TestCa` ([`crate::HttpsReceiver::start_with_ca`],
/// [`crate::raw::RawTlsReceiver::start`]) are all trusted by trusting [`TestCa::pem`]
/// once; a receiver started with another `TestCa` (or [`crate::HttpsReceiver::start`],
/// which makes its own) is not. Cheap to clone (the TLS configuration is shared).
///
/// Panics (it is a test helper) if a key or certificate cannot be made.
#[derive(Clone)]
pub struct TestCa {
    pem: String,
    acceptor: TlsAcceptor,
}

impl TestCa {
    /// A fresh CA (its own key pair) and a leaf for `localhost`, `127.0.0.1` and `::1`.
    pub fn new() -> Self {
        let (pem, acceptor) = make_tls();
        Self { pem, acceptor }
    }

    /// A certificate as `openssl req -x509` makes it by default and newcomers serve: one
    /// self-signed certificate marked `CA:TRUE` (for `localhost`, `127.0.0.1` and `::1`)
    /// used as the server's own, with no CA apart from itself. [`Self::pem`] is it.
    pub fn self_signed() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

        let mut params = CertificateParams::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])
        .expect("testkit: params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let key = KeyPair::generate().expect("testkit: key");
        let cert = params.self_signed(&key).expect("testkit: certificate");
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Self {
            pem: cert.pem(),
            acceptor: acceptor(vec![cert.der().clone()], der),
        }
    }

    /// Serves a certificate chain and key made elsewhere (e.g. by the `openssl` command),
    /// both PEM; [`Self::pem`] is the chain as given.
    pub fn from_pem(chain_pem: &str, key_pem: &str) -> Self {
        use rustls::pki_types::pem::PemObject;

        let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("testkit: certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("testkit: key PEM");
        Self {
            pem: chain_pem.to_owned(),
            acceptor: acceptor(chain, key),
        }
    }

    /// PEM of the CA certificate: trust this.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// Writes [`Self::pem`] to a new file `dir/testkit-ca-PID-N.pem` and returns its path.
    /// Panics if the file cannot be written.
    pub fn write_pem(&self, dir: impl AsRef<Path>) -> PathBuf {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir
            .as_ref()
            .join(format!("testkit-ca-{}-{n}.pem", std::process::id()));
        std::fs::write(&path, &self.pem)
            .unwrap_or_else(|e| panic!("testkit: write {}: {e}", path.display()));
        path
    }

    /// The server side of TLS with the leaf (and the CA) as its chain, ALPN `http/1.1`.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A CA, a leaf for localhost/127.0.0.1/::1 signed by it, and a TLS acceptor serving the
/// leaf.
fn make_tls() -> (String, TlsAcceptor) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("testkit: CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // A name of its own, so a client that trusts another TestCa finds no issuer by that
    // name (`UnknownIssuer`, as with any foreign CA) rather than a namesake whose
    // signature does not match.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    ca_params.distinguished_name.push(
        DnType::CommonName,
        format!("testkit receiver CA {}-{n}", std::process::id()),
    );
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().expect("testkit: CA key");
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("testkit: CA certificate");

    let leaf_key = KeyPair::generate().expect("testkit: leaf key");
    let mut leaf_params = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .expect("testkit: leaf params");
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca)
        .expect("testkit: leaf certificate");

    let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone(), ca.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    (ca.pem(), acceptor(chain, key))
}

/// A TLS acceptor serving `chain` with `key` (HTTP/1.1 only). Uses the aws-lc-rs
/// provider explicitly, so no process-wide default provider is needed.
fn acceptor(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> TlsAcceptor {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("testkit: TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("testkit: server certificate");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}
