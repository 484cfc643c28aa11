//! `fallback-api`: the HTTP API's `$default` route. API Gateway sends it every request
//! no other route matches, and it answers them as the service does (the local server,
//! which routes everything in one process): a JSON 404 for an unknown path, a JSON 405
//! with `Allow` for a method the path does not serve. It reads no table and no queue.

use shared::settings::{LogSettings, ProcessEnv};
use shared::wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init_lambda(&LogSettings::from_env(&ProcessEnv));
    // The same route families as the local server, so both know the same paths.
    let router = wiring::fallback_lambda(|services| {
        services
            .routes()
            .merge(console::routes(console::FrameAncestors::default()))
    });
    lambda_http::run(router).await
}
