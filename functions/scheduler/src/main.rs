//! `scheduler`: runs every minute (EventBridge) and hands the queue the attempts due in
//! the coming minute from the store's due list.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::pipeline::scheduler::run_now;
use shared::settings::{ProcessEnv, SchedulerSettings};
use shared::wiring::{Aws, Function};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let settings = SchedulerSettings::from_env(&ProcessEnv)?;
    shared::telemetry::init_lambda(&settings.log);
    let aws = Aws::new(&settings.aws, Function::Scheduler).await;
    let aws = &aws;
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            let handed = run_now(aws.store.as_ref(), aws.queue.as_ref()).await?;
            Ok::<_, Error>(serde_json::json!({ "handed": handed }))
        },
    ))
    .await
}
