//! The local server: every route family on one listener, on the embedded store, from the
//! same handler code the Lambdas run.

mod banner;
pub mod cli;
pub mod dev_ca;
mod json_errors;
pub mod listen;
mod persistence;
pub mod server;
pub mod settings;
mod stand_ins;

pub use cli::{Cli, Command, KeySpec, Options};
pub use persistence::{Loaded, LoadedCounts, SAVE_EVERY};
pub use server::{LocalServer, StartError, run, shutdown_signal};
