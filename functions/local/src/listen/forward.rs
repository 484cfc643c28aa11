//! Forwarding a delivery to the user's app (`--forward-to`), and relaying its answer.

use super::ListenError;
use bytes::Bytes;
use hyper::{HeaderMap, StatusCode};
use std::time::Duration;

/// How much of the app's answer is relayed to the service (which keeps less).
const MAX_RELAYED_BYTES: usize = 64 * 1024;
/// How long the app may take; the service gives up sooner (15 s by default).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(60);

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

/// The user's app, and the client that reaches it.
pub struct Forward {
    client: reqwest::Client,
    pub url: String,
}

impl Forward {
    /// `--forward-to URL`: an http or https URL.
    pub fn to(url: &str) -> Result<Self, ListenError> {
        let invalid = |message: String| ListenError::ForwardTo {
            url: url.to_owned(),
            message,
        };
        let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid("must be an http or https URL".into()));
        }
        // The app is the user's own, usually on this machine: never through a proxy
        // from the environment, which would also see every delivery.
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FORWARD_TIMEOUT)
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            client,
            url: url.to_owned(),
        })
    }

    /// The app's status, its `Content-Type` and `Retry-After` (which the service honours on
    /// 429 and 503) and the start of its body; 502 when it cannot be reached.
    pub async fn send(&self, headers: &HeaderMap, body: Bytes) -> (StatusCode, HeaderMap, Bytes) {
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
        let response = match self
            .client
            .post(&self.url)
            .headers(outgoing)
            .body(body)
            .send()
            .await
        {
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
}
