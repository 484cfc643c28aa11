//! `endpoints-api`: the endpoint route family on API Gateway (HTTP API, payload v2),
//! `GET /key`, portal sessions, `GET /openapi.json` and the web console (the document
//! and the console's files are constants of the binary, so serving them costs nothing).

use shared::api::{caller_key, endpoints, openapi, portal, request_metrics};
use shared::settings::{ApiSettings, ProcessEnv};
use shared::wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let settings = ApiSettings::from_env(&ProcessEnv)?;
    shared::telemetry::init_lambda(&settings.log);
    let frame_ancestors =
        console::FrameAncestors::parse(settings.console_frame_ancestors.as_deref())?;
    let router = wiring::api_lambda(&settings, wiring::Function::EndpointsApi, |services| {
        endpoints::routes(services.endpoints.clone())
            .merge(caller_key::routes(services.endpoints.keys.clone()))
            .merge(portal::routes(services.endpoints.keys))
            .merge(openapi::routes())
            .merge(request_metrics::labelled(
                console::routes(frame_ancestors),
                "console",
            ))
    })
    .await;
    lambda_http::run(router).await
}
