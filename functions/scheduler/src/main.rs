//! `scheduler`: runs every minute (EventBridge) and hands the queue the attempts due in
//! the coming minute from the store's due list.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::config::ProcessEnv;
use shared::pipeline::scheduler::run_now;
use shared::wiring::Aws;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_lambda();
    let aws = Aws::from_env(&ProcessEnv).await?;
    let aws = &aws;
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            let handed = run_now(aws.store.as_ref(), aws.queue.as_ref()).await?;
            Ok::<_, Error>(serde_json::json!({ "handed": handed }))
        },
    ))
    .await
}
