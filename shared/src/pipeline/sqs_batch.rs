//! The sender Lambda's batch handling: every record of an SQS batch concurrently, sharing
//! endpoint reads and breaker updates (`batch`), with partial-batch failures reported so
//! only the failed messages come back, and the batch's metrics emitted at its end.

use super::batch::Batch;
use super::{Handled, Sender};
use crate::domain::Job;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures_util::future::join_all;

/// Handle a batch. A record that cannot be parsed, or whose handling hit a storage or
/// queue error, is reported failed: SQS hands it back, and after the queue's
/// `maxReceiveCount` a poison message lands in the dead-letter queue.
pub async fn handle_batch(sender: &Sender, event: SqsEvent) -> SqsBatchResponse {
    let batch = Batch::default();
    let batch = &batch;
    let outcomes = join_all(event.records.into_iter().map(|record| async move {
        let id = record.message_id.unwrap_or_default();
        let job = match record.body.as_deref().map(serde_json::from_str::<Job>) {
            Some(Ok(job)) => job,
            _ => {
                tracing::error!(message_id = %id, "unreadable job message");
                return Some(id);
            }
        };
        // A message handed out before: its attempt may have been made already.
        let redelivered = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse::<u32>().ok())
            .is_some_and(|c| c > 1);
        match sender.handle_in(batch, job, redelivered).await {
            Ok(handled) => {
                if handled == Handled::Skipped {
                    tracing::debug!(message_id = %id, "nothing to do (duplicate or stale)");
                }
                None
            }
            Err(err) => {
                tracing::error!(message_id = %id, error = %err, "job failed; the queue will retry it");
                Some(id)
            }
        }
    }))
    .await;
    sender.finish_batch(batch).await;
    sender.metrics.emit(&batch.tally.lines());
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = outcomes
        .into_iter()
        .flatten()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}
