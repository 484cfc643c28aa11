//! `endpoints-api`: the endpoint route family on API Gateway (HTTP API, payload v2),
//! `GET /key` and `GET /openapi.json` (the document is a constant of the binary, so this
//! costs nothing).

use shared::api::{self, endpoints, key, openapi, portal, request_metrics};
use shared::config::ProcessEnv;
use shared::wiring::{self, Aws};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init_lambda();
    // Adapters are built once per cold start and shared by every invocation.
    let aws = Aws::from_env(&ProcessEnv).await?;
    let services = aws.services();
    let routes = api::finish(
        endpoints::routes(services.endpoints.clone())
            .merge(key::routes(services.endpoints.keys.clone()))
            .merge(portal::routes(services.endpoints.keys))
            .merge(openapi::routes()),
    );
    lambda_http::run(request_metrics::measured(
        routes,
        wiring::metrics_sink(&ProcessEnv),
    ))
    .await
}
