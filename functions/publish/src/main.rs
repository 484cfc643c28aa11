//! `publish-api`: publishing events on API Gateway.

use shared::api::{self, publish, request_metrics};
use shared::config::ProcessEnv;
use shared::wiring::{self, Aws};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init_lambda();
    let aws = Aws::from_env(&ProcessEnv).await?;
    lambda_http::run(request_metrics::measured(
        api::finish(publish::routes(aws.services().publish)),
        wiring::metrics_sink(&ProcessEnv),
    ))
    .await
}
