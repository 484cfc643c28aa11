//! `sender`: SQS-triggered; signs and posts deliveries, records attempts, schedules
//! retries, and reports partial batch failures.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::settings::{ProcessEnv, SenderLambdaSettings};
use shared::wiring::sqs_batch::handle_sqs_batch;
use shared::wiring::{Aws, Function};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let settings = SenderLambdaSettings::from_env(&ProcessEnv)?;
    shared::telemetry::init_lambda(&settings.log);
    let aws = Aws::new(&settings.aws, Function::Sender).await;
    let sender = aws.sender(&settings)?;
    let sender = &sender;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(handle_sqs_batch(sender, event.payload).await)
    }))
    .await
}
