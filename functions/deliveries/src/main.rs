//! `deliveries-api`: delivery history and manual retries on API Gateway.

use shared::api::{self, deliveries};
use shared::config::ProcessEnv;
use shared::wiring::Aws;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init_lambda();
    let aws = Aws::from_env(&ProcessEnv).await?;
    lambda_http::run(api::finish(deliveries::routes(aws.services().deliveries))).await
}
