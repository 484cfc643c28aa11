//! `publish-api`: publishing events on API Gateway.

use shared::api::{self, publish};
use shared::config::ProcessEnv;
use shared::wiring::Aws;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init_lambda();
    let aws = Aws::from_env(&ProcessEnv).await?;
    lambda_http::run(api::finish(publish::routes(aws.services().publish))).await
}
