//! Logging set-up: `LOG_LEVEL` (an `EnvFilter` directive, default `info`).
//!
//! `LOG_LEVEL` can open this service's own code down to `trace`, but never anyone
//! else's: at `debug`/`trace` the AWS SDK and the HTTP stacks log whole requests and
//! responses, which hold endpoint secrets (DynamoDB items) and payloads. An `EnvFilter`
//! directive alone cannot promise that (a more specific one such as
//! `hyper_util::client::legacy=trace` outranks a crate-wide cap), so a second filter,
//! applied after it, drops every event below `info` whose target is not one of ours.

use crate::settings::LogSettings;
use std::io::IsTerminal;
use tracing::{Level, Metadata};
use tracing_subscriber::filter::{EnvFilter, FilterExt, FilterFn};
use tracing_subscriber::layer::{Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry, fmt};

/// The crates of this workspace (targets are module paths, `-` becomes `_`): only these
/// may log below `info`.
const OWN_CRATES: &[&str] = &[
    "shared",
    "webhooks_local",
    "webhooks_admin",
    "endpoints_api",
    "deliveries_api",
    "publish_api",
    "sender",
    "scheduler",
];

fn is_own(target: &str) -> bool {
    OWN_CRATES.iter().any(|krate| {
        target
            .strip_prefix(krate)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// Everything at `info` and above, and finer levels only from our own crates.
fn below_info_only_ours() -> FilterFn<impl Fn(&Metadata<'_>) -> bool> {
    FilterFn::new(|meta: &Metadata<'_>| *meta.level() <= Level::INFO || is_own(meta.target()))
}

/// `LOG_LEVEL` (any `EnvFilter` directive; `info` if unset or invalid), capped as above.
fn filter(level: Option<&str>) -> impl Filter<Registry> + Send + Sync + 'static {
    let directives =
        EnvFilter::try_new(level.unwrap_or("info")).unwrap_or_else(|_| EnvFilter::new("info"));
    directives.and(below_info_only_ours()).or(invocation_span())
}

/// The span `lambda_runtime` opens around each invocation, holding its `requestId`:
/// enabled at every `LOG_LEVEL`, so every line logged in an invocation carries it.
const INVOCATION_SPAN: &str = "Lambda runtime invoke";

fn invocation_span() -> FilterFn<impl Fn(&Metadata<'_>) -> bool> {
    FilterFn::new(|meta: &Metadata<'_>| meta.is_span() && meta.name() == INVOCATION_SPAN)
}

/// One JSON object per line, with the current span's fields (the invocation's
/// `requestId`), without ANSI colours or timestamps: CloudWatch adds its own.
fn lambda_layer<W>(writer: W, level: Option<&str>) -> impl Layer<Registry> + Send + Sync
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    fmt::layer()
        .json()
        .with_ansi(false)
        .without_time()
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(writer)
        .with_filter(filter(level))
}

/// JSON lines on stdout ([`lambda_layer`]): what Logs Insights queries.
pub fn init_lambda(log: &LogSettings) {
    let _ = lambda_subscriber(std::io::stdout, log.level.as_deref()).try_init();
}

/// The Lambdas' subscriber, writing to `writer` at `level` (tests read what it writes).
pub fn lambda_subscriber<W>(
    writer: W,
    level: Option<&str>,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    Registry::default().with(lambda_layer(writer, level))
}

/// Human-readable lines on stderr, for the local server and the CLI; coloured only when
/// stderr is a terminal (and `NO_COLOR` is unset), so a log file or pipe gets plain text.
pub fn init_local(log: &LogSettings) {
    let colour = std::io::stderr().is_terminal() && !log.no_color;
    let layer = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_filter(filter(log.level.as_deref()));
    let _ = Registry::default().with(layer).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What the events below write when `LOG_LEVEL` is `level`.
    fn logged(level: &str) -> String {
        let out = Captured::default();
        let writer = out.clone();
        let layer = fmt::layer()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .with_filter(filter(Some(level)));
        tracing::subscriber::with_default(Registry::default().with(layer), || {
            tracing::trace!(target: "hyper_util::client::legacy::pool", "hyper-trace");
            tracing::debug!(target: "aws_smithy_runtime::client::orchestrator", "sdk-debug");
            tracing::debug!(target: "aws_sigv4::http_request", "sigv4-debug");
            tracing::info!(target: "hyper_util::client::legacy", "hyper-info");
            tracing::debug!(target: "shared::pipeline::sender", "own-debug");
            tracing::trace!(target: "webhooks_local", "local-trace");
            tracing::debug!(target: "sharedx::lookalike", "lookalike-debug");
        });
        let bytes = out.0.lock().expect("lock").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn other_crates_stay_at_info_whatever_the_directive() {
        for level in [
            "trace",
            "debug",
            "hyper_util::client::legacy=trace",
            "info,hyper_util=trace,aws_smithy_runtime::client=debug,aws_sigv4=trace",
            "trace,shared=trace",
        ] {
            let out = logged(level);
            for hidden in ["hyper-trace", "sdk-debug", "sigv4-debug", "lookalike-debug"] {
                assert!(!out.contains(hidden), "{level}: {hidden} leaked:\n{out}");
            }
        }
        assert!(logged("hyper_util=trace").contains("hyper-info"));
    }

    #[test]
    fn lambda_lines_are_json_with_the_request_id_at_every_level() {
        for level in ["info", "warn"] {
            let out = Captured::default();
            let writer = out.clone();
            let layer = lambda_layer(move || writer.clone(), Some(level));
            tracing::subscriber::with_default(Registry::default().with(layer), || {
                let span = tracing::info_span!(
                    target: "lambda_runtime::layers::trace",
                    "Lambda runtime invoke",
                    requestId = "8f5a-req"
                );
                let _in = span.enter();
                tracing::warn!(
                    target: "shared::pipeline::sender",
                    delivery_id = "d1",
                    "attempt recorded"
                );
            });
            let text = String::from_utf8(out.0.lock().expect("lock").clone()).expect("utf-8");
            let line: serde_json::Value =
                serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
            assert_eq!(line["span"]["requestId"], "8f5a-req", "{level}: {text}");
            assert_eq!(line["fields"]["delivery_id"], "d1");
            assert_eq!(line["fields"]["message"], "attempt recorded");
        }
    }

    #[test]
    fn our_code_follows_the_directive() {
        let out = logged("trace");
        assert!(
            out.contains("own-debug") && out.contains("local-trace"),
            "{out}"
        );
        let out = logged("info");
        assert!(
            !out.contains("own-debug") && !out.contains("local-trace"),
            "{out}"
        );
        assert!(logged("shared=debug").contains("own-debug"));
        assert!(!logged("not a directive ===").contains("own-debug"));
    }
}
