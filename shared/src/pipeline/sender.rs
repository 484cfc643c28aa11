//! The sender: one job at a time, claim → sign → POST → record → schedule.
//!
//! Idempotent under at-least-once delivery: a job names the attempt it is for and the
//! sender claims that attempt with a conditional write before posting, so a duplicate
//! message finds the claim taken (or the attempt recorded) and does nothing. The attempt
//! and the delivery's new state are written together, only while the claim is held; a
//! sender that dies after the POST leaves an expiring lease and a due delivery, which the
//! recovery sweep re-queues, so the try is repeated, never lost.

use crate::domain::retry::breaker_trips;
use crate::domain::{
    Attempt, AttemptOutcome, Delivery, DeliveryStatus, Endpoint, Job, Lease, PostOutcome,
    RetryPolicy, Trigger, now,
};
use crate::ports::{
    ClaimFor, DeliveryStore, EndpointHealth, EndpointStore, EventStore, JobQueue, QueueError,
    StoreError, WebhookTransport,
};
use crate::signing;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use uuid::Uuid;

/// The queue's longest delay: waits beyond it are made in hops.
pub const MAX_QUEUE_DELAY: Duration = crate::adapters::sqs::MAX_DELAY;
/// Deliveries handled per resume or purge job; the job re-queues itself for the rest,
/// so no invocation runs long however many there are.
pub const CHUNK: u32 = 200;

pub struct SenderSettings {
    pub retry: RetryPolicy,
    pub breaker_threshold: u32,
    /// How long a claim holds: longer than one POST can take (its total timeout), so a
    /// live sender never loses its claim, short enough that a dead one's is soon free.
    pub lease: Duration,
    pub user_agent: String,
}

/// Failures that should make the queue hand the job back (storage or queue trouble).
#[derive(Debug, Error)]
pub enum SendError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// What handling a job came to (for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// An attempt was made and recorded.
    Attempted {
        status: DeliveryStatus,
        attempt: u32,
    },
    /// The job was early and went back on the queue.
    Hopped,
    /// A manual retry met another attempt in flight and went back on the queue.
    Deferred,
    /// Nothing to do: a duplicate, a stale job, or a deleted delivery.
    Skipped,
    /// The endpoint is inactive: the delivery is paused until it is resumed.
    Held,
    /// A chunk of a resume or purge; `more` if the job re-queued itself.
    Chunk { done: usize, more: bool },
}

/// Whether parking a delivery should look again at its endpoint.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Recheck {
    EndpointResumed,
    No,
}

pub struct Sender {
    pub endpoints: Arc<dyn EndpointStore>,
    pub health: Arc<dyn EndpointHealth>,
    pub deliveries: Arc<dyn DeliveryStore>,
    pub events: Arc<dyn EventStore>,
    pub queue: Arc<dyn JobQueue>,
    pub transport: Arc<dyn WebhookTransport>,
    pub settings: SenderSettings,
}

/// A uniform number in [0, 1) for retry jitter.
fn unit_random() -> f64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

fn until(later: DateTime<Utc>, from: DateTime<Utc>) -> Duration {
    (later - from).to_std().unwrap_or(Duration::ZERO)
}

/// The job that makes the next attempt of a delivery that is due.
pub fn next_job(d: &Delivery) -> Job {
    match d.manual_retry {
        Some(request) => Job::manual(d.id, request),
        None => Job::automatic(d.id, d.attempt_count + 1, None),
    }
}

impl Sender {
    pub async fn handle(&self, job: Job) -> Result<Handled, SendError> {
        match job {
            Job::Deliver {
                delivery_id,
                attempt,
                trigger,
                manual_retry,
                not_before,
                ..
            } => {
                let now = now();
                if let Some(at) = not_before.filter(|at| *at > now + chrono::Duration::seconds(1)) {
                    let delay = until(at, now).min(MAX_QUEUE_DELAY);
                    let hop = Job::automatic(delivery_id, attempt, Some(at));
                    self.queue.enqueue(vec![(hop, delay)]).await?;
                    return Ok(Handled::Hopped);
                }
                let claim = match (trigger, manual_retry) {
                    (Trigger::Manual, Some(request)) => ClaimFor::Manual(request),
                    (Trigger::Automatic, _) if attempt > 0 => ClaimFor::Attempt(attempt),
                    _ => return Ok(Handled::Skipped),
                };
                match self.deliver(delivery_id, claim, trigger).await? {
                    Handled::Skipped => self.defer_open_request(delivery_id, claim).await,
                    handled => Ok(handled),
                }
            }
            Job::ResumeEndpoint {
                org, endpoint_id, ..
            } => self.resume(&org, endpoint_id).await,
            Job::PurgeEndpoint {
                org, endpoint_id, ..
            } => self.purge(&org, endpoint_id).await,
        }
    }

    /// A manual retry that found another attempt in flight must not be lost: while its
    /// request is still open, send the job on to arrive after that attempt's claim ends.
    async fn defer_open_request(&self, id: Uuid, claim: ClaimFor) -> Result<Handled, SendError> {
        let ClaimFor::Manual(request) = claim else {
            return Ok(Handled::Skipped);
        };
        let Some(d) = self.deliveries.get_delivery(id).await? else {
            return Ok(Handled::Skipped);
        };
        if d.manual_retry != Some(request) {
            return Ok(Handled::Skipped);
        }
        let at = now();
        let wait = d
            .lease
            .map_or(Duration::ZERO, |l| until(l.until, at))
            .max(Duration::from_secs(1));
        self.queue
            .enqueue(vec![(Job::manual(id, request), wait.min(MAX_QUEUE_DELAY))])
            .await?;
        Ok(Handled::Deferred)
    }

    async fn deliver(
        &self,
        id: Uuid,
        claim: ClaimFor,
        trigger: Trigger,
    ) -> Result<Handled, SendError> {
        let started = now();
        let lease = Lease {
            id: Uuid::now_v7(),
            until: started + chrono::Duration::from_std(self.settings.lease).unwrap_or_default(),
        };
        let Some(delivery) = self.deliveries.claim(id, claim, lease, started).await? else {
            return Ok(Handled::Skipped);
        };
        let endpoint = self
            .endpoints
            .get_endpoint(&delivery.org, delivery.endpoint_id)
            .await?;
        let event = self
            .events
            .get_event(&delivery.org, &delivery.event_id)
            .await?;
        let Some(endpoint) = endpoint.filter(|e| e.is_active) else {
            return self
                .hold(&delivery, lease.id, Recheck::EndpointResumed)
                .await;
        };
        let Some(event) = event else {
            // Expired ahead of its delivery: nothing to send, and nothing to retry.
            tracing::error!(delivery_id = %id, "event missing: holding the delivery");
            return self.hold(&delivery, lease.id, Recheck::No).await;
        };

        let attempt_number = delivery.attempt_count + 1;
        let signature = match signing::sign(
            &endpoint.secret,
            &delivery.id.to_string(),
            started.timestamp(),
            event.payload.as_bytes(),
        ) {
            Ok(s) => s,
            Err(err) => {
                tracing::error!(delivery_id = %id, error = %err, "cannot sign: holding the delivery");
                return self.hold(&delivery, lease.id, Recheck::No).await;
            }
        };
        let headers = [
            ("content-type", "application/json".to_owned()),
            ("user-agent", self.settings.user_agent.clone()),
            ("x-agentvista-signature", signature.agentvista_signature),
            ("x-agentvista-event", delivery.event_type.clone()),
            ("x-agentvista-delivery", delivery.id.to_string()),
            ("webhook-id", signature.webhook_id),
            ("webhook-timestamp", signature.webhook_timestamp),
            ("webhook-signature", signature.webhook_signature),
        ];
        let result = self
            .transport
            .post(&endpoint.url, &headers, bytes::Bytes::from(event.payload))
            .await;

        let finished = now();
        let gone = result.status == Some(410);
        let outcome = self.outcome_of(attempt_number, &result, finished);
        let attempt = Attempt {
            attempt_number,
            trigger,
            started_at: started,
            duration_ms: u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX),
            succeeded: result.error.is_none(),
            status_code: result.status,
            response_body: result.response_body,
            error: result.error,
        };

        if gone {
            // Before the attempt is recorded: should recording fail, the delivery stays
            // due and its next try finds the endpoint paused, instead of a paused
            // delivery waiting on an endpoint nobody paused.
            self.pause_gone(&endpoint, finished).await?;
        }
        let Some(recorded) = self
            .deliveries
            .record_attempt(&delivery, lease.id, &attempt, &outcome, finished)
            .await?
        else {
            // Our claim expired and another sender took the delivery over.
            tracing::warn!(delivery_id = %id, attempt = attempt_number, "claim lost before recording; attempt not recorded twice");
            return Ok(Handled::Skipped);
        };
        tracing::info!(
            delivery_id = %id,
            endpoint_id = %endpoint.id,
            attempt = attempt_number,
            status_code = ?attempt.status_code,
            error = ?attempt.error.as_ref().map(|e| e.kind),
            outcome = ?outcome.status,
            "attempt recorded"
        );

        self.update_breaker(&endpoint, attempt.succeeded, finished)
            .await?;
        let mut jobs = Vec::new();
        if let Some(at) = outcome.next_attempt_at {
            let job = Job::automatic(id, attempt_number + 1, Some(at));
            jobs.push((job, until(at, finished).min(MAX_QUEUE_DELAY)));
        }
        // A manual retry requested during this attempt goes out now that it has ended,
        // not when its deferred job would have come back.
        if let (Some(request), false) = (recorded.manual_retry, recorded.held) {
            jobs.push((Job::manual(id, request), Duration::ZERO));
        }
        if !jobs.is_empty()
            && let Err(err) = self.queue.enqueue(jobs).await
        {
            tracing::warn!(delivery_id = %id, error = %err, "next attempt not enqueued; the sweep will re-queue it when due");
        }
        Ok(Handled::Attempted {
            status: outcome.status,
            attempt: attempt_number,
        })
    }

    /// Where a delivery goes after attempt `attempt_number` ended as `result`: succeeded;
    /// paused on 410 Gone; retrying on the schedule (a `Retry-After` on 429/503 counts);
    /// failed once the schedule is spent.
    fn outcome_of(
        &self,
        attempt_number: u32,
        result: &PostOutcome,
        finished: DateTime<Utc>,
    ) -> AttemptOutcome {
        let (status, next_attempt_at) = if result.error.is_none() {
            (DeliveryStatus::Succeeded, None)
        } else if result.status == Some(410) {
            (DeliveryStatus::Paused, None)
        } else {
            let retry_after = result
                .retry_after
                .filter(|_| matches!(result.status, Some(429 | 503)));
            match self
                .settings
                .retry
                .next_delay(attempt_number, retry_after, unit_random())
            {
                Some(wait) => (
                    DeliveryStatus::Retrying,
                    Some(finished + chrono::Duration::from_std(wait).unwrap_or_default()),
                ),
                None => (DeliveryStatus::Failed, None),
            }
        };
        AttemptOutcome {
            status,
            next_attempt_at,
        }
    }

    async fn pause_gone(&self, endpoint: &Endpoint, at: DateTime<Utc>) -> Result<(), SendError> {
        if self
            .health
            .pause_endpoint(&endpoint.org, endpoint.id, None, at)
            .await?
        {
            tracing::warn!(org = %endpoint.org, endpoint_id = %endpoint.id, "endpoint answered 410 Gone: paused");
        }
        Ok(())
    }

    /// The circuit breaker: success clears the count, failure adds one and pauses the
    /// endpoint at the threshold. The reset never trusts the endpoint as read before the
    /// POST: a concurrent attempt may have failed since, so it is decided by the stored
    /// count.
    async fn update_breaker(
        &self,
        endpoint: &Endpoint,
        succeeded: bool,
        at: DateTime<Utc>,
    ) -> Result<(), SendError> {
        let (org, id) = (endpoint.org.as_str(), endpoint.id);
        if succeeded {
            self.health.record_success(org, id).await?;
            return Ok(());
        }
        let count = self.health.record_failure(org, id).await?;
        let threshold = self.settings.breaker_threshold;
        if count.is_some_and(|c| breaker_trips(c, threshold))
            && self
                .health
                .pause_endpoint(org, id, Some(threshold), at)
                .await?
        {
            tracing::warn!(org, endpoint_id = %id, threshold, "circuit breaker tripped: endpoint paused");
        }
        Ok(())
    }

    /// Park a claimed delivery until its endpoint is resumed. For an inactive endpoint,
    /// check once more afterwards: if it was resumed meanwhile, its resume job may
    /// already have run, so re-queue at once.
    async fn hold(
        &self,
        delivery: &Delivery,
        lease: Uuid,
        recheck: Recheck,
    ) -> Result<Handled, SendError> {
        let at = now();
        self.deliveries.hold(delivery, lease, at).await?;
        if recheck == Recheck::No {
            return Ok(Handled::Held);
        }
        let resumed = self
            .endpoints
            .get_endpoint(&delivery.org, delivery.endpoint_id)
            .await?
            .is_some_and(|e| e.is_active);
        if resumed
            && self
                .deliveries
                .resume_delivery(&delivery.parked(at), at)
                .await?
            && let Some(d) = self.deliveries.get_delivery(delivery.id).await?
        {
            self.queue
                .enqueue(vec![(next_job(&d), Duration::ZERO)])
                .await?;
        }
        Ok(Handled::Held)
    }

    /// Re-queue a chunk of a resumed endpoint's paused deliveries.
    async fn resume(&self, org: &str, endpoint_id: Uuid) -> Result<Handled, SendError> {
        let active = self
            .endpoints
            .get_endpoint(org, endpoint_id)
            .await?
            .is_some_and(|e| e.is_active);
        if !active {
            return Ok(Handled::Skipped);
        }
        let paused = self
            .deliveries
            .paused_deliveries(endpoint_id, CHUNK)
            .await?;
        let at = now();
        let mut jobs = Vec::with_capacity(paused.len());
        for d in &paused {
            if self.deliveries.resume_delivery(d, at).await? {
                jobs.push((next_job(d), Duration::ZERO));
            }
        }
        let more = paused.len() == CHUNK as usize;
        if more {
            jobs.push((
                Job::ResumeEndpoint {
                    v: crate::domain::job::JOB_VERSION,
                    org: org.to_owned(),
                    endpoint_id,
                },
                Duration::ZERO,
            ));
        }
        let done = jobs.len() - usize::from(more);
        self.queue.enqueue(jobs).await?;
        Ok(Handled::Chunk { done, more })
    }

    /// Delete a chunk of a deleted endpoint's deliveries and attempts.
    async fn purge(&self, org: &str, endpoint_id: Uuid) -> Result<Handled, SendError> {
        if self
            .endpoints
            .get_endpoint(org, endpoint_id)
            .await?
            .is_some()
        {
            // The endpoint exists: this job is not for it (its delete did not happen).
            return Ok(Handled::Skipped);
        }
        let ids = self
            .deliveries
            .endpoint_delivery_ids(endpoint_id, CHUNK)
            .await?;
        self.deliveries.delete_deliveries(&ids).await?;
        let more = ids.len() == CHUNK as usize;
        if more {
            let again = Job::PurgeEndpoint {
                v: crate::domain::job::JOB_VERSION,
                org: org.to_owned(),
                endpoint_id,
            };
            self.queue.enqueue(vec![(again, Duration::ZERO)]).await?;
        }
        Ok(Handled::Chunk {
            done: ids.len(),
            more,
        })
    }
}
