//! The HTTPS receiver: each delivery verified with the endpoint's secret, forwarded if
//! asked and only if verified, printed as one JSON line, answered (401 if unverified).

use super::ListenError;
use super::forward::Forward;
use crate::dev_ca::Leaf;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Value, json};
use shared::domain::SigningSecret;
use shared::signing::{self, ReceivedSignatures};
use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Request bodies accepted (the service sends at most about 260 KiB).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every request handler shares.
pub struct Receiver {
    /// Set once the endpoint is registered (no delivery can come before).
    secret: OnceLock<SigningSecret>,
    forward: Option<Forward>,
}

impl Receiver {
    pub fn new(forward: Option<Forward>) -> Self {
        Self {
            secret: OnceLock::new(),
            forward,
        }
    }

    /// The endpoint is registered: deliveries are verified with its secret.
    pub fn registered(&self, secret: SigningSecret) {
        let _ = self.secret.set(secret);
    }
}

/// TLS with the development CA's leaf for loopback.
pub fn tls_acceptor(leaf: &Leaf) -> Result<TlsAcceptor, ListenError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let tls = |e: &dyn std::fmt::Display| ListenError::Tls(e.to_string());
    let chain = CertificateDer::pem_slice_iter(leaf.chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls(&e))?;
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).map_err(|e| tls(&e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| tls(&e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accept connections until aborted, each delivery handled by [`receive`].
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, receiver: Arc<Receiver>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        let receiver = receiver.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = service_fn(move |request| receive(receiver.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// One delivery: verify, forward, print, answer.
async fn receive(
    receiver: Arc<Receiver>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, MAX_BODY_BYTES).collect().await else {
        return Ok(answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            HeaderMap::new(),
            Bytes::new(),
        ));
    };
    let body = body.to_bytes();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let verified = receiver.secret.get().is_some_and(|secret| {
        signing::verify(
            secret,
            &ReceivedSignatures {
                agentvista_signature: header(signing::AGENTVISTA_SIGNATURE_HEADER),
                webhook_id: header(signing::WEBHOOK_ID_HEADER),
                webhook_timestamp: header(signing::WEBHOOK_TIMESTAMP_HEADER),
                webhook_signature: header(signing::WEBHOOK_SIGNATURE_HEADER),
            },
            &body,
            chrono::Utc::now().timestamp(),
        )
        .both()
    });

    // The app is only ever handed what the service signed: anyone on this machine can
    // reach the receiver.
    let (forwarded, (status, headers, reply)) = match &receiver.forward {
        _ if !verified => (false, unverified()),
        Some(app) => (true, app.send(&parts.headers, body).await),
        None => (false, (StatusCode::OK, HeaderMap::new(), Bytes::new())),
    };
    let line = json!({
        "delivery_id": header("x-agentvista-delivery").or(header(signing::WEBHOOK_ID_HEADER)),
        "event_type": header("x-agentvista-event"),
        "verified": verified,
        "forwarded_status": forwarded.then_some(status.as_u16()),
    });
    print_line(&line);
    Ok(answer(status, headers, reply))
}

/// The answer to a request whose signatures did not verify: 401, in the service's error
/// shape.
fn unverified() -> (StatusCode, HeaderMap, Bytes) {
    let mut headers = HeaderMap::new();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    let body = json!({"error": {
        "code": "signature_invalid",
        "message": "the signatures do not verify with this endpoint's secret; not forwarded",
    }});
    (
        StatusCode::UNAUTHORIZED,
        headers,
        Bytes::from(body.to_string()),
    )
}

fn print_line(line: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn answer(status: StatusCode, headers: HeaderMap, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
