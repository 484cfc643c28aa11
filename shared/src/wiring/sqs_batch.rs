//! The sender Lambda's SQS event: its records read as jobs and handed to the batch path
//! (`pipeline::queue_batch`), failures reported as a partial batch response so only the
//! failed messages come back.

use crate::domain::Job;
use crate::pipeline::Sender;
use crate::pipeline::queue_batch::{QueuedJob, handle_batch};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};

/// Handle an SQS batch. A record that cannot be parsed, or whose handling hit a storage
/// or queue error, is reported failed: SQS hands it back, and after the queue's
/// `maxReceiveCount` a poison message lands in the dead-letter queue.
pub async fn handle_sqs_batch(sender: &Sender, event: SqsEvent) -> SqsBatchResponse {
    let mut jobs = Vec::new();
    let mut failed = Vec::new();
    for record in event.records {
        match queued_job(record) {
            Ok(job) => jobs.push(job),
            Err(unreadable) => failed.push(unreadable),
        }
    }
    failed.extend(handle_batch(sender, jobs).await);
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// The record's job, or its message id when its body is not one.
fn queued_job(record: SqsMessage) -> Result<QueuedJob<String>, String> {
    let id = record.message_id.unwrap_or_default();
    let Some(Ok(job)) = record.body.as_deref().map(serde_json::from_str::<Job>) else {
        tracing::error!(message_id = %id, "unreadable job message");
        return Err(id);
    };
    // A message handed out before: its attempt may have been made already.
    let redelivered = record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse::<u32>().ok())
        .is_some_and(|c| c > 1);
    Ok(QueuedJob {
        message_id: id,
        job,
        redelivered,
    })
}
