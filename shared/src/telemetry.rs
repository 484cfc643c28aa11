//! Logging set-up: `LOG_LEVEL` (an `EnvFilter` directive, default `info`).

use tracing_subscriber::EnvFilter;

fn filter() -> EnvFilter {
    let level = std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".into());
    EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// JSON lines without ANSI colours or timestamps: CloudWatch adds its own, and a JSON
/// line is what Logs Insights queries.
pub fn init_lambda() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter())
        .with_ansi(false)
        .without_time()
        .with_current_span(false)
        .try_init();
}

/// Human-readable lines on stderr, for the local server and the CLI.
pub fn init_local() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .try_init();
}
