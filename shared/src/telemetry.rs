//! Logging set-up: `LOG_LEVEL` (an `EnvFilter` directive, default `info`).

use tracing_subscriber::EnvFilter;

/// At `trace`/`debug` the AWS SDK and the HTTP stacks log whole requests and responses,
/// which hold endpoint secrets (DynamoDB items) and payloads: whatever `LOG_LEVEL` says,
/// they stay at `info`.
const CAPPED: &str = "aws_smithy_runtime=info,aws_smithy_runtime_api=info,aws_smithy_http_client=info,\
aws_sdk_dynamodb=info,aws_sdk_sqs=info,aws_config=info,hyper=info,hyper_util=info,h2=info,\
reqwest=info,rustls=info,tower=info";

fn filter() -> EnvFilter {
    let level = std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".into());
    EnvFilter::try_new(format!("{level},{CAPPED}"))
        .unwrap_or_else(|_| EnvFilter::new(format!("info,{CAPPED}")))
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

#[cfg(test)]
mod tests {
    use super::CAPPED;
    use tracing_subscriber::EnvFilter;

    #[test]
    fn the_sdk_stays_at_info_even_at_trace() {
        let filter = EnvFilter::try_new(format!("trace,{CAPPED}")).expect("valid");
        let shown = filter.to_string();
        assert!(shown.contains("aws_smithy_runtime=info"), "{shown}");
        assert!(shown.contains("hyper=info"), "{shown}");
    }
}
