//! `endpoints-api`: the endpoint route family on API Gateway (HTTP API, payload v2).

use shared::adapters::dynamo::DynamoStore;
use shared::api::{self, endpoints};
use shared::config::{self, ProcessEnv};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init_lambda();
    // Adapters are built once per cold start and shared by every invocation.
    let store = Arc::new(DynamoStore::from_env(config::table_name(&ProcessEnv)?).await);
    let app = api::finish(endpoints::routes(endpoints::EndpointsState {
        endpoints: store.clone(),
        keys: store,
    }));
    lambda_http::run(app).await
}
