//! `deliveries-api`: delivery history and manual retries on API Gateway.

use shared::api::{self, deliveries, request_metrics};
use shared::config::ProcessEnv;
use shared::wiring::{self, Aws};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init_lambda();
    let aws = Aws::from_env(&ProcessEnv).await?;
    lambda_http::run(request_metrics::measured(
        api::finish(deliveries::routes(aws.services().deliveries)),
        wiring::metrics_sink(&ProcessEnv),
    ))
    .await
}
