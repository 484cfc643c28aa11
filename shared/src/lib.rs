//! AgentVista Webhooks: the domain, its ports, the adapters behind them and the HTTP API.
//!
//! Every entry point (the Lambda binaries, the local server, the operator CLI and the
//! tests) builds its adapters once and hands them to the same code in here.

pub mod adapters;
pub mod api;
pub mod domain;
pub mod key_admin;
pub mod metrics;
pub mod pipeline;
pub mod ports;
pub mod settings;
pub mod signing;
pub mod telemetry;
pub mod wiring;
