//! `deliveries-api`: delivery history and manual retries on API Gateway.

use shared::api::deliveries;
use shared::settings::{ApiSettings, ProcessEnv};
use shared::wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let settings = ApiSettings::from_env(&ProcessEnv)?;
    shared::telemetry::init_lambda(&settings.log);
    let router = wiring::api_lambda(&settings, wiring::Function::DeliveriesApi, |services| {
        deliveries::routes(services.deliveries)
    })
    .await;
    lambda_http::run(router).await
}
