//! The delivery queue on SQS.
//!
//! Every message carries `MessageGroupId` = the job's organisation. On a standard queue
//! that makes it a fair queue: when one organisation builds a backlog, SQS serves the
//! other organisations' messages first, so a quiet tenant's deliveries do not wait
//! behind a noisy one's. It orders nothing and costs nothing (docs/DESIGN.md).

use crate::domain::Job;
use crate::ports::{JobQueue, QueueError};
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use std::time::Duration;

/// SQS's longest per-message delay.
const MAX_DELAY: Duration = Duration::from_secs(900);
/// SQS's largest `SendMessageBatch`.
const BATCH: usize = 10;

#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }
}

#[async_trait]
impl JobQueue for SqsQueue {
    fn max_delay(&self) -> Duration {
        MAX_DELAY
    }

    async fn enqueue(&self, jobs: Vec<(Job, Duration)>) -> Result<(), QueueError> {
        for chunk in jobs.chunks(BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, (job, delay))| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(job.to_json())
                        .message_group_id(job.org().as_str())
                        .delay_seconds(
                            i32::try_from(delay.min(&MAX_DELAY).as_secs()).unwrap_or(900),
                        )
                        .build()
                        .map_err(|e| QueueError(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| QueueError(DisplayErrorContext(e).to_string()))?;
            if let Some(failed) = out.failed.first() {
                return Err(QueueError(format!(
                    "{} of {} messages refused, first: {} {}",
                    out.failed.len(),
                    chunk.len(),
                    failed.code,
                    failed.message.as_deref().unwrap_or("")
                )));
            }
        }
        Ok(())
    }
}
