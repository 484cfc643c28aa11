//! `endpoints-api`: the endpoint route family on API Gateway (HTTP API, payload v2),
//! `GET /key`, portal sessions, `GET /openapi.json` and the web console (the document
//! and the console's files are constants of the binary, so serving them costs nothing).

use shared::api::{self, caller_key, endpoints, openapi, portal, request_metrics};
use shared::config::{Env, ProcessEnv};
use shared::wiring::{self, Aws};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init_lambda();
    // Adapters are built once per cold start and shared by every invocation.
    let aws = Aws::from_env(&ProcessEnv).await?;
    let services = aws.services();
    let frame_ancestors =
        console::FrameAncestors::parse(ProcessEnv.get("CONSOLE_FRAME_ANCESTORS").as_deref())?;
    let routes = api::finish(
        endpoints::routes(services.endpoints.clone())
            .merge(caller_key::routes(services.endpoints.keys.clone()))
            .merge(portal::routes(services.endpoints.keys))
            .merge(openapi::routes())
            .merge(request_metrics::labelled(
                console::routes(frame_ancestors),
                "console",
            )),
    );
    lambda_http::run(request_metrics::measured(
        routes,
        wiring::metrics_sink(&ProcessEnv),
    ))
    .await
}
