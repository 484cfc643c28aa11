//! Integration tests across crates. The DynamoDB half needs the moto server that
//! `scripts/test.sh` starts; run them through it (see README.md).

mod api_errors;
mod common;
mod contract;
mod fixtures;
