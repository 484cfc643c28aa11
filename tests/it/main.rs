//! Integration tests across crates. The DynamoDB half needs the moto server that
//! `scripts/test.sh` starts; run them through it (see README.md).

#[macro_use]
mod common;

mod api_errors;
mod api_reference;
mod capacity;
mod console_routes;
mod contract;
mod delivery_contract;
mod faults;
mod fixtures;
mod hardening;
mod iam;
mod matrix;
mod metrics;
mod openapi;
mod pipeline;
mod pipeline_api;
mod portal_sessions;
mod publish_faults;
mod retention;
mod sqs;
mod template;
mod unrouted;
