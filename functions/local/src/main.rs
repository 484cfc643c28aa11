//! `webhooks-local`: see SPEC.md, "Local server contract".

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    shared::telemetry::init_local();
    let options = webhooks_local::Options::parse();
    match webhooks_local::run(options, &shared::config::ProcessEnv).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("webhooks-local: {err}");
            ExitCode::FAILURE
        }
    }
}
