//! `sender`: SQS-triggered; signs and posts deliveries, records attempts, schedules
//! retries, and reports partial batch failures.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::config::ProcessEnv;
use shared::wiring::Aws;
use shared::wiring::sqs_batch::handle_sqs_batch;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_lambda();
    let aws = Aws::from_env(&ProcessEnv).await?;
    let sender = aws.sender(&ProcessEnv)?;
    let sender = &sender;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(handle_sqs_batch(sender, event.payload).await)
    }))
    .await
}
