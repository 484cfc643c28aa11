//! `webhooks-local listen`: an HTTPS receiver on loopback, like `stripe listen`. It
//! registers an endpoint for itself through the public API (`control`), verifies each
//! delivery's signatures with that endpoint's secret and prints one JSON line per
//! delivery (`receiver`), optionally forwards it to the user's app and answers with the
//! app's status (`forward`), and deletes the endpoint when stopped.

mod control;
mod forward;
mod receiver;

pub use control::run;

use crate::dev_ca::DevCaError;
use thiserror::Error;

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
    #[error("cannot make the HTTP client for the server's API: {0}")]
    ApiClient(reqwest::Error),
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
