//! What a handler takes from a request, each part checked as it is taken.

pub mod auth;
pub mod body;
pub mod path;
pub mod query;
