//! The local server's delivery queue: jobs wait out their delay on a timer in this
//! process, then reach the worker through a channel.

use crate::domain::Job;
use crate::ports::{JobQueue, QueueError};
use async_trait::async_trait;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Clone)]
pub struct MemoryQueue {
    ready: mpsc::UnboundedSender<Job>,
}

impl MemoryQueue {
    /// The queue, and the receiving end the worker reads due jobs from.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Job>) {
        let (ready, rx) = mpsc::unbounded_channel();
        (Self { ready }, rx)
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn enqueue(&self, jobs: Vec<(Job, Duration)>) -> Result<(), QueueError> {
        if self.ready.is_closed() {
            return Err(QueueError("the local worker has stopped".into()));
        }
        for (job, delay) in jobs {
            if delay.is_zero() {
                let _ = self.ready.send(job);
                continue;
            }
            let ready = self.ready.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = ready.send(job);
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DeliveryJob, EventRef};
    use uuid::Uuid;

    fn job() -> Job {
        let id = Uuid::now_v7();
        let event = EventRef {
            id: "evt_1".into(),
            event_type: "a.b".into(),
            created_at: crate::domain::now(),
        };
        DeliveryJob::new("acme", id, id, event, None).automatic(1)
    }

    #[tokio::test(start_paused = true)]
    async fn jobs_arrive_after_their_delay_in_delay_order() {
        let (queue, mut rx) = MemoryQueue::new();
        let late = job();
        let early = job();
        queue
            .enqueue(vec![
                (late.clone(), Duration::from_secs(10)),
                (early.clone(), Duration::from_secs(2)),
            ])
            .await
            .expect("enqueue");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(rx.try_recv().is_err(), "nothing is due yet");
        assert_eq!(rx.recv().await, Some(early));
        assert_eq!(rx.recv().await, Some(late));
    }
}
