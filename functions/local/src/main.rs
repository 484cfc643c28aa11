//! `webhooks-local`: the local server, or with `listen` the local listener (README,
//! "Local server" and "Local listener").

use clap::Parser;
use shared::config::Env;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    shared::telemetry::init_local();
    let env = shared::config::ProcessEnv;
    let cli = webhooks_local::Cli::parse();
    let result = match cli.command {
        Some(webhooks_local::Command::Listen(options)) => {
            let cache = webhooks_local::dev_ca::cache_dir(|name| env.get(name));
            webhooks_local::listen::run(
                options,
                cache.as_deref(),
                webhooks_local::shutdown_signal(),
            )
            .await
            .map_err(|e| e.to_string())
        }
        None => webhooks_local::run(cli.server, &env)
            .await
            .map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("webhooks-local: {err}");
            ExitCode::FAILURE
        }
    }
}
