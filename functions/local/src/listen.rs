//! `webhooks-local listen`: an HTTPS receiver on loopback, like `stripe listen`. It
//! registers an endpoint for itself through the public API, verifies each delivery's
//! signatures with that endpoint's secret, prints one JSON line per delivery, optionally
//! forwards it to the user's app and answers with the app's status, and deletes the
//! endpoint when stopped.

use crate::dev_ca::{DevCa, DevCaError, Leaf};
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
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[derive(Debug, Clone, clap::Args)]
pub struct ListenOptions {
    /// An API key of the organisation (admin: it creates and deletes the endpoint).
    #[arg(long)]
    pub key: String,
    /// Event types to subscribe to, comma-separated.
    #[arg(
        long,
        value_name = "TYPE[,TYPE...]",
        value_delimiter = ',',
        required = true
    )]
    pub events: Vec<String>,
    /// The local server.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    pub server: String,
    /// The organisation (default: the key's own, as the server's `GET /key` tells).
    #[arg(long)]
    pub org: Option<String>,
    /// Your app: each delivery is forwarded there (body and headers unchanged), and the
    /// app's status code is the service's answer.
    #[arg(long = "forward-to", value_name = "URL")]
    pub forward_to: Option<String>,
}

#[derive(Debug, Error)]
pub enum ListenError {
    #[error(transparent)]
    DevCa(#[from] DevCaError),
    #[error("no cache directory for the development CA: set XDG_CACHE_HOME or HOME")]
    NoCacheDir,
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot listen on loopback: {0}")]
    Listen(std::io::Error),
    #[error("--forward-to {url}: {message}")]
    ForwardTo { url: String, message: String },
    #[error(
        "cannot reach the server at {server} (is `webhooks-local` running? --server sets where): {message}"
    )]
    Unreachable { server: String, message: String },
    #[error("the server answered {status}: {message}")]
    Refused { status: u16, message: String },
}

/// Request bodies accepted (the service sends at most about 260 KiB).
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How much of the app's answer is relayed to the service (which keeps less).
const MAX_RELAYED_BYTES: usize = 64 * 1024;
/// How long the app may take; the service gives up sooner (15 s by default).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(60);

/// What every request handler shares.
struct Receiver {
    /// Set once the endpoint is registered (no delivery can come before).
    secret: OnceLock<SigningSecret>,
    forward: Option<(reqwest::Client, String)>,
}

/// Run until SIGINT or SIGTERM: serve, register, print, then delete the endpoint.
pub async fn run(
    options: ListenOptions,
    cache_dir: Option<&Path>,
    stopped: impl std::future::Future<Output = ()>,
) -> Result<(), ListenError> {
    let forward = options
        .forward_to
        .as_deref()
        .map(forward_client)
        .transpose()?;
    let ca = DevCa::find_or_create(cache_dir.ok_or(ListenError::NoCacheDir)?)?;
    let acceptor = tls_acceptor(&ca.issue_leaf()?)?;
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(ListenError::Listen)?;
    let addr = listener.local_addr().map_err(ListenError::Listen)?;

    let receiver = Arc::new(Receiver {
        secret: OnceLock::new(),
        forward,
    });
    let serving = tokio::spawn(serve(listener, acceptor, receiver.clone()));

    let api = Api::new(&options).await?;
    let url = format!("https://{addr}/");
    // Polled from here on, so a Ctrl-C during registration is caught too: the endpoint,
    // once created, is deleted again.
    let mut stopped = std::pin::pin!(stopped);
    let registration = api.register(&url, &options.events);
    let mut registration = std::pin::pin!(registration);
    let mut stop_early = false;
    let (id, secret) = loop {
        tokio::select! {
            registered = &mut registration => break registered?,
            () = &mut stopped, if !stop_early => stop_early = true,
        }
    };
    if stop_early {
        serving.abort();
        let _ = api.delete(&id).await;
        return Ok(());
    }
    let _ = receiver
        .secret
        .set(SigningSecret::from_stored(secret.clone()));
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "endpoint {id} {url}");
        let _ = writeln!(out, "secret {secret}");
        let _ = out.flush();
    }
    eprintln!(
        "webhooks-local listen: receiving {} for org {}{}; Ctrl-C deletes the endpoint and stops",
        options.events.join(","),
        api.org,
        options
            .forward_to
            .as_deref()
            .map(|u| format!(", forwarding to {u}"))
            .unwrap_or_default()
    );

    stopped.await;
    serving.abort();
    match api.delete(&id).await {
        Ok(()) => eprintln!("webhooks-local listen: deleted endpoint {id}"),
        Err(message) => {
            eprintln!("webhooks-local listen: could not delete endpoint {id}: {message}")
        }
    }
    Ok(())
}

fn forward_client(url: &str) -> Result<(reqwest::Client, String), ListenError> {
    let invalid = |message: String| ListenError::ForwardTo {
        url: url.to_owned(),
        message,
    };
    let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("must be an http or https URL".into()));
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(FORWARD_TIMEOUT)
        .build()
        .map_err(|e| invalid(e.to_string()))?;
    Ok((client, url.to_owned()))
}

fn tls_acceptor(leaf: &Leaf) -> Result<TlsAcceptor, ListenError> {
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

async fn serve(listener: TcpListener, acceptor: TlsAcceptor, receiver: Arc<Receiver>) {
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

    let (status, headers, reply) = match &receiver.forward {
        Some((client, url)) => forward(client, url, &parts.headers, body).await,
        None => (StatusCode::OK, HeaderMap::new(), Bytes::new()),
    };
    let line = json!({
        "delivery_id": header("x-agentvista-delivery").or(header(signing::WEBHOOK_ID_HEADER)),
        "event_type": header("x-agentvista-event"),
        "verified": verified,
        "forwarded_status": receiver.forward.as_ref().map(|_| status.as_u16()),
    });
    print_line(&line);
    Ok(answer(status, headers, reply))
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

/// Headers that describe one hop's connection, not the delivery: never forwarded.
const HOP_HEADERS: &[&str] = &[
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
];

/// The app's status, its `Content-Type` and `Retry-After` (which the service honours on
/// 429 and 503) and the start of its body; 502 when it cannot be reached.
async fn forward(
    client: &reqwest::Client,
    url: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, Bytes) {
    let mut outgoing = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        if !HOP_HEADERS.contains(&name.as_str()) {
            outgoing.append(name.clone(), value.clone());
        }
    }
    let unreachable = |message: &str| {
        (
            StatusCode::BAD_GATEWAY,
            HeaderMap::new(),
            Bytes::from(format!("webhooks-local listen: {message}")),
        )
    };
    let response = match client.post(url).headers(outgoing).body(body).send().await {
        Ok(response) => response,
        Err(_) => return unreachable("the app cannot be reached"),
    };
    let status = response.status();
    let mut relayed = HeaderMap::new();
    for name in ["content-type", "retry-after"] {
        if let Some(value) = response.headers().get(name) {
            relayed.insert(name, value.clone());
        }
    }
    let mut reply = Vec::new();
    let mut stream = response;
    while reply.len() < MAX_RELAYED_BYTES {
        match stream.chunk().await {
            Ok(Some(chunk)) => reply.extend_from_slice(&chunk),
            _ => break,
        }
    }
    reply.truncate(MAX_RELAYED_BYTES);
    (status, relayed, Bytes::from(reply))
}

/// The public API, as the listener uses it.
struct Api {
    client: reqwest::Client,
    org: String,
    endpoints: String,
    key: String,
    server: String,
}

/// The organisation when the server cannot say (a server without `GET /key`).
const DEFAULT_ORG: &str = "demo";

impl Api {
    /// The API of `--server`, for `--org` or else the key's own organisation.
    async fn new(options: &ListenOptions) -> Result<Self, ListenError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ListenError::Tls(e.to_string()))?;
        let server = options.server.trim_end_matches('/').to_owned();
        let org = match &options.org {
            Some(org) => org.clone(),
            None => key_org(&client, &server, &options.key).await?,
        };
        Ok(Self {
            client,
            endpoints: format!("{server}/org/{org}/webhooks/endpoints"),
            org,
            key: options.key.clone(),
            server,
        })
    }

    /// Create the endpoint: its id and signing secret.
    async fn register(
        &self,
        url: &str,
        events: &[String],
    ) -> Result<(String, String), ListenError> {
        let response = self
            .client
            .post(&self.endpoints)
            .bearer_auth(&self.key)
            .json(&json!({
                "url": url,
                "description": "webhooks-local listen",
                "event_types": events,
            }))
            .send()
            .await
            .map_err(|e| ListenError::Unreachable {
                server: self.server.clone(),
                message: e.to_string(),
            })?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let text = |field: &str| body[field].as_str().map(str::to_owned);
        match (status, text("id"), text("secret")) {
            (201, Some(id), Some(secret)) => Ok((id, secret)),
            _ => Err(ListenError::Refused {
                status,
                message: refusal(status, &body),
            }),
        }
    }

    async fn delete(&self, id: &str) -> Result<(), String> {
        let response = self
            .client
            .delete(format!("{}/{id}", self.endpoints))
            .bearer_auth(&self.key)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match response.status().as_u16() {
            204 | 404 => Ok(()),
            other => Err(format!("the server answered {other}")),
        }
    }
}

/// The key's organisation, from `GET /key`.
async fn key_org(client: &reqwest::Client, server: &str, key: &str) -> Result<String, ListenError> {
    let response = client
        .get(format!("{server}/key"))
        .bearer_auth(key)
        .send()
        .await
        .map_err(|e| ListenError::Unreachable {
            server: server.to_owned(),
            message: e.to_string(),
        })?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    match (status, body["org"].as_str()) {
        (200, Some(org)) => Ok(org.to_owned()),
        (404, _) => Ok(DEFAULT_ORG.to_owned()),
        _ => Err(ListenError::Refused {
            status,
            message: refusal(status, &body),
        }),
    }
}

/// The server's error message, with what to do about the usual causes.
fn refusal(status: u16, body: &Value) -> String {
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or("no error message")
        .to_owned();
    match status {
        401 => format!("{message} (check --key)"),
        403 => format!("{message} (the key must be an admin key)"),
        404 => format!("{message} (is --org the key's organisation?)"),
        _ => message,
    }
}
