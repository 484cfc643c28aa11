//! `publish-api`: publishing events on API Gateway.

use shared::api::publish;
use shared::settings::{ApiSettings, ProcessEnv};
use shared::wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let settings = ApiSettings::from_env(&ProcessEnv)?;
    shared::telemetry::init_lambda(&settings.log);
    let router = wiring::api_lambda(&settings, wiring::Function::PublishApi, |services| {
        publish::routes(services.publish)
    })
    .await;
    lambda_http::run(router).await
}
