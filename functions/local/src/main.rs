//! `webhooks-local`: the local server, or with `listen` the local listener (README,
//! "Local server" and "Local listener").

use clap::Parser;
use shared::settings::ProcessEnv;
use std::process::ExitCode;
use webhooks_local::settings::LocalSettings;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = LocalSettings::from_env(&ProcessEnv);
    shared::telemetry::init_local(&settings.log);
    let cli = webhooks_local::Cli::parse();
    let result = match cli.command {
        Some(webhooks_local::Command::Listen(options)) => webhooks_local::listen::run(
            options,
            settings.cache_dir.as_deref(),
            webhooks_local::shutdown_signal(),
        )
        .await
        .map_err(|e| e.to_string()),
        None => webhooks_local::run(cli.server, &settings, &ProcessEnv)
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
