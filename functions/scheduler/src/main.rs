//! `scheduler`: runs every minute (EventBridge) and re-queues overdue deliveries.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::config::ProcessEnv;
use shared::pipeline::sweep::{DEFAULT_GRACE, SWEEP_LIMIT, sweep};
use shared::wiring::Aws;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_lambda();
    let aws = Aws::from_env(&ProcessEnv).await?;
    let aws = &aws;
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            let requeued = sweep(
                aws.store.as_ref(),
                aws.queue.as_ref(),
                DEFAULT_GRACE,
                SWEEP_LIMIT,
            )
            .await?;
            Ok::<_, Error>(serde_json::json!({ "requeued": requeued }))
        },
    ))
    .await
}
