//! `publish-api`: publishing events on API Gateway.

use shared::api::{self, publish, request_metrics};
use shared::settings::{ApiSettings, ProcessEnv};
use shared::wiring::{self, Aws};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let settings = ApiSettings::from_env(&ProcessEnv)?;
    shared::telemetry::init_lambda(&settings.log);
    let aws = Aws::new(&settings.aws).await;
    lambda_http::run(request_metrics::measured(
        api::finish(publish::routes(aws.services().publish)),
        wiring::metrics_sink(settings.metrics_namespace.as_deref()),
    ))
    .await
}
