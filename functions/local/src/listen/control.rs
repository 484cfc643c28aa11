//! Registering the listener's endpoint through the public API, the run loop, and
//! deleting the endpoint when stopped.

use super::forward::Forward;
use super::receiver::{self, Receiver};
use super::{ListenError, ListenOptions};
use crate::dev_ca::DevCa;
use serde_json::{Value, json};
use shared::domain::SigningSecret;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Run until SIGINT or SIGTERM: serve, register, print, then delete the endpoint.
pub async fn run(
    options: ListenOptions,
    cache_dir: Option<&Path>,
    stopped: impl std::future::Future<Output = ()>,
) -> Result<(), ListenError> {
    let forward = options.forward_to.as_deref().map(Forward::to).transpose()?;
    let ca = DevCa::find_or_create(cache_dir.ok_or(ListenError::NoCacheDir)?)?;
    let acceptor = receiver::tls_acceptor(&ca.issue_leaf()?)?;
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(ListenError::Listen)?;
    let addr = listener.local_addr().map_err(ListenError::Listen)?;

    let receiver = Arc::new(Receiver::new(forward));
    let serving = tokio::spawn(receiver::serve(listener, acceptor, receiver.clone()));

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
    receiver.registered(SigningSecret::from_stored(secret.clone()));
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
        // The server is local: a proxy from the environment would only be in the way,
        // and would see the key.
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(ListenError::ApiClient)?;
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
