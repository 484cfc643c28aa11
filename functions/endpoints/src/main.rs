//! `endpoints-api`: the endpoint route family on API Gateway (HTTP API, payload v2), and
//! `GET /openapi.json` (the document is a constant of the binary, so this costs nothing).

use shared::api::{self, endpoints, openapi};
use shared::config::ProcessEnv;
use shared::wiring::Aws;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init_lambda();
    // Adapters are built once per cold start and shared by every invocation.
    let aws = Aws::from_env(&ProcessEnv).await?;
    lambda_http::run(api::finish(
        endpoints::routes(aws.services().endpoints).merge(openapi::routes()),
    ))
    .await
}
