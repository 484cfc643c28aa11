//! The sender: one job at a time, sign → POST → record → schedule what follows.
//!
//! Idempotent under at-least-once delivery without a claim: a job names the attempt it
//! is for (or the manual retry request), and the attempt is recorded only if the stored
//! delivery is still waiting for exactly that attempt, so a duplicate message records
//! nothing twice. A message the queue hands out again (its sender died, or its handling
//! failed) first reads the delivery: if its attempt is recorded it is not posted again,
//! and whatever should follow it (the next attempt) is made sure of. The message stays
//! on the queue until it is handled, so a sender dying after the POST loses nothing: the
//! try is repeated, with the same `webhook-id`.

use super::batch::Batch;
use super::in_flight::EndpointSlots;
use crate::domain::OrgSlug;
use crate::domain::recovery::{RecoveryStatus, failed_position};
use crate::domain::{
    Attempt, AttemptErrorKind, AttemptOutcome, Delivery, DeliveryJob, DeliveryKey, DeliveryStatus,
    Endpoint, EndpointNumber, EventRef, Expect, Job, Pause, PausedBy, PostOutcome, RetryPolicy,
    ScheduledAttempt, Trigger, now,
};
use crate::metrics::{MetricsSink, PauseReason};
use crate::ports::{
    AttemptStats, DeliveryStore, EndpointHealth, EndpointStore, EventStore, JobQueue, QueueError,
    RecoveryStore, RetryOf, Schedule, StoreError, WebhookTransport,
};
use crate::signing;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use uuid::Uuid;

/// Deliveries handled per resume or purge job; the job re-queues itself for the rest,
/// so no invocation runs long however many there are.
pub const CHUNK: u32 = 200;

pub struct SenderSettings {
    pub retry: RetryPolicy,
    pub breaker_threshold: u32,
    pub user_agent: String,
    /// Attempts to one endpoint at once, at most (`ENDPOINT_MAX_IN_FLIGHT`).
    pub endpoint_max_in_flight: u32,
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
    /// Nothing to do: a duplicate, a stale job, or a deleted delivery.
    Skipped,
    /// The endpoint is inactive: the delivery is held until it is resumed.
    Held,
    /// A chunk of a resume or purge; `more` if the job re-queued itself.
    Chunk { done: usize, more: bool },
}

/// Whether holding a delivery should look again at its endpoint.
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
    pub schedule: Arc<dyn Schedule>,
    pub stats: Arc<dyn AttemptStats>,
    pub recoveries: Arc<dyn RecoveryStore>,
    pub queue: Arc<dyn JobQueue>,
    pub transport: Arc<dyn WebhookTransport>,
    pub settings: SenderSettings,
    /// Where each batch's metrics go (`queue_batch::handle_batch`).
    pub metrics: Arc<dyn MetricsSink>,
    /// The attempts under way per endpoint, capped at `settings.endpoint_max_in_flight`.
    pub in_flight: EndpointSlots,
}

/// A uniform number in [0, 1) for retry jitter.
fn unit_random() -> f64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

pub fn until(later: DateTime<Utc>, from: DateTime<Utc>) -> Duration {
    (later - from).to_std().unwrap_or(Duration::ZERO)
}

/// A job for a stored delivery; without a payload, the sender reads the event.
pub fn delivery_job(d: &Delivery, payload: Option<&str>) -> DeliveryJob {
    DeliveryJob::new(
        &d.org,
        d.endpoint_id,
        d.id,
        EventRef {
            id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            created_at: d.created_at,
        },
        payload,
    )
}

/// The job that makes the next attempt of a delivery that is due.
pub fn next_job(d: &Delivery) -> Job {
    match d.manual_retry {
        Some(request) => delivery_job(d, None).manual(request),
        None => delivery_job(d, None).automatic(d.attempt_count() + 1),
    }
}

/// A delivery job, taken apart.
struct Work {
    job: DeliveryJob,
    key: DeliveryKey,
    expect: Expect,
    trigger: Trigger,
}

impl Work {
    /// The delivery as the job describes it: what a first attempt writes when the
    /// publish died before writing it.
    fn seed(&self) -> Delivery {
        let event = &self.job.event;
        Delivery {
            id: self.job.delivery_id,
            key: self.key,
            org: self.job.org.clone(),
            endpoint_id: self.job.endpoint_id,
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            status: DeliveryStatus::Pending,
            attempts: Vec::new(),
            created_at: event.created_at,
            updated_at: event.created_at,
            next_attempt_at: Some(event.created_at),
            manual_retry: None,
            held: false,
        }
    }
}

impl Sender {
    /// Handle one job; `redelivered` when the queue has handed this message out before.
    pub async fn handle(&self, job: Job, redelivered: bool) -> Result<Handled, SendError> {
        let batch = Batch::default();
        let handled = self.handle_in(&batch, job, redelivered).await;
        self.finish_batch(&batch).await;
        handled
    }

    /// Write what a batch counted for the console's statistics: one write per
    /// organisation and hour. The attempts are recorded already, so a failed write is logged, not
    /// retried (handing the jobs back would make attempts again): the chart then misses
    /// those attempts.
    pub async fn finish_batch(&self, batch: &Batch) {
        let counts = batch.hourly.take();
        if counts.is_empty() {
            return;
        }
        if let Err(err) = self.stats.add_attempt_counts(&counts).await {
            tracing::warn!(error = %err, "attempt statistics not written");
        }
    }

    /// Handle one job of `batch`, sharing its reads and breaker updates with the others.
    pub async fn handle_in(
        &self,
        batch: &Batch,
        job: Job,
        redelivered: bool,
    ) -> Result<Handled, SendError> {
        match job {
            Job::Deliver {
                org,
                endpoint_id,
                delivery_id,
                attempt,
                trigger,
                manual_retry,
                event,
                payload,
                ..
            } => {
                let Some(key) = DeliveryKey::from_id(delivery_id) else {
                    tracing::error!(%delivery_id, "job for an id that names no delivery");
                    return Ok(Handled::Skipped);
                };
                let expect = match (trigger, manual_retry) {
                    (Trigger::Manual, Some(request)) => Expect::Request(request),
                    (Trigger::Automatic, _) if attempt > 0 => Expect::Attempt(attempt),
                    _ => return Ok(Handled::Skipped),
                };
                let work = Work {
                    job: DeliveryJob {
                        org,
                        endpoint_id,
                        delivery_id,
                        event,
                        payload,
                    },
                    key,
                    expect,
                    trigger,
                };
                self.deliver(batch, work, redelivered).await
            }
            Job::ResumeEndpoint {
                org, endpoint_id, ..
            } => self.resume(&org, endpoint_id).await,
            Job::PurgeEndpoint {
                org,
                endpoint_id,
                endpoint_number,
                ..
            } => self.purge(&org, endpoint_id, endpoint_number).await,
            Job::RecoverEndpoint {
                org, recovery_id, ..
            } => self.recover(&org, recovery_id).await,
        }
    }

    async fn deliver(
        &self,
        batch: &Batch,
        mut work: Work,
        redelivered: bool,
    ) -> Result<Handled, SendError> {
        // The stored delivery is read when it matters: for a manual retry (the outcome
        // it leaves), for a later automatic attempt (a manual retry may have finished
        // the delivery since it was scheduled: then there is nothing to send), and for a
        // message handed out before (its attempt may be recorded already). A first
        // attempt, the common case, reads nothing of it.
        let later = matches!(work.expect, Expect::Attempt(n) if n > 1);
        let stored = if work.trigger == Trigger::Manual || redelivered || later {
            self.deliveries.get_delivery(work.key).await?
        } else {
            None
        };
        if let Some(d) = &stored {
            if !d.meets(work.expect) {
                if redelivered {
                    self.follow_up(d, work.job.payload.as_deref()).await?;
                }
                return Ok(Handled::Skipped);
            }
            if let Expect::Attempt(n) = work.expect
                && !d.awaits(n)
            {
                return Ok(Handled::Skipped);
            }
        } else if later || matches!(work.expect, Expect::Request(_)) {
            return Ok(Handled::Skipped);
        }
        let seed = stored.unwrap_or_else(|| work.seed());
        // Its place among the delivery's attempts, as far as this sender knows.
        let attempt_number = seed.attempt_count() + 1;

        // A change to the endpoint reaches this read within about a second: an attempt
        // begun just after a pause or rotation is made as before it, as one begun just
        // before would be.
        let endpoint = batch
            .endpoint(self.endpoints.as_ref(), &work.job.org, work.job.endpoint_id)
            .await?;
        let Some(endpoint) = endpoint.filter(|e| e.is_active) else {
            return self.hold(&work, Recheck::EndpointResumed).await;
        };
        let Some(payload) = self.payload(&mut work.job).await? else {
            // Expired ahead of its delivery: nothing to send, and nothing to retry.
            tracing::error!(delivery_id = %work.job.delivery_id, "event missing: holding the delivery");
            return self.hold(&work, Recheck::No).await;
        };

        // Waits while the endpoint has its cap of attempts under way; before signing, so
        // the signature's timestamp is the time of sending.
        let slot = self.in_flight.acquire(endpoint.id).await;
        let started = now();
        let signature = match signing::sign(
            &endpoint.secret,
            &work.job.delivery_id.to_string(),
            started.timestamp(),
            &payload,
        ) {
            Ok(s) => s,
            Err(err) => {
                tracing::error!(delivery_id = %work.job.delivery_id, error = %err, "cannot sign: holding the delivery");
                return self.hold(&work, Recheck::No).await;
            }
        };
        let headers = [
            ("content-type", "application/json".to_owned()),
            ("user-agent", self.settings.user_agent.clone()),
            ("x-agentvista-signature", signature.agentvista_signature),
            ("x-agentvista-event", work.job.event.event_type.clone()),
            ("x-agentvista-delivery", work.job.delivery_id.to_string()),
            ("webhook-id", signature.webhook_id),
            ("webhook-timestamp", signature.webhook_timestamp),
            ("webhook-signature", signature.webhook_signature),
        ];
        if batch.has_paused(&endpoint) {
            // Another job of this batch paused it (410, breaker) since it was read.
            return self.hold(&work, Recheck::EndpointResumed).await;
        }
        let posting = batch.posting(&endpoint);
        let result = self
            .transport
            .post(&endpoint.url, &headers, payload.clone())
            .await;
        drop(slot);

        let finished = now();
        let gone = result.status == Some(410);
        let outcome = match work.expect {
            Expect::Attempt(n) => self.outcome_of(n, &result, finished),
            Expect::Request(_) => seed.manual_outcome(&result),
        };
        let attempt = Attempt {
            attempt_number,
            trigger: work.trigger,
            started_at: started,
            duration_ms: u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX),
            succeeded: result.error.is_none(),
            status_code: result.status,
            response_body: result.response_body,
            error: result.error,
        };

        if gone {
            // Before the attempt is recorded: should recording fail, the message comes
            // back and finds the endpoint paused, instead of a held delivery waiting on
            // an endpoint nobody paused.
            if self.pause_gone(&endpoint, finished).await? {
                batch.tally.paused(PauseReason::Gone);
            }
            batch.paused(&endpoint);
        }
        let Some(recorded) = self
            .deliveries
            .record_attempt(&seed, work.expect, &attempt, &outcome, finished)
            .await?
        else {
            tracing::warn!(delivery_id = %work.job.delivery_id, attempt = attempt_number, "attempt already recorded (duplicate message); not recorded twice");
            // The write that recorded it may have been this one: applied, answered with
            // an error, retried by the SDK and refused by its condition. Whoever recorded
            // it, the next attempt must be on its way, as for a redelivered message.
            if let Expect::Attempt(_) = work.expect
                && let Some(d) = self.deliveries.get_delivery(work.key).await?
            {
                self.follow_up(&d, std::str::from_utf8(&payload).ok())
                    .await?;
            }
            return Ok(Handled::Skipped);
        };
        let error_kind = attempt.error.as_ref().map(|e| e.kind);
        tracing::info!(
            org = %work.job.org,
            endpoint_id = %endpoint.id,
            delivery_id = %work.job.delivery_id,
            attempt = attempt_number,
            trigger = work.trigger.as_str(),
            status_code = attempt.status_code,
            error_kind = error_kind.map(AttemptErrorKind::as_str),
            duration_ms = attempt.duration_ms,
            outcome = outcome.status.as_str(),
            "attempt recorded"
        );
        batch.hourly.attempt(
            &endpoint.org,
            endpoint.number,
            attempt.started_at,
            attempt.succeeded,
        );
        // Exhausted: an automatic attempt that left the delivery failed for good (a
        // manual retry that fails leaves a failed delivery as it was).
        batch.tally.attempt(
            error_kind,
            attempt.duration_ms,
            work.trigger == Trigger::Automatic && outcome.status == DeliveryStatus::Failed,
        );
        batch
            .count_outcome(
                self.health.as_ref(),
                posting,
                &endpoint,
                attempt.succeeded,
                self.settings.breaker_threshold,
            )
            .await?;
        if let Expect::Attempt(_) = work.expect {
            self.follow_up(&recorded, std::str::from_utf8(&payload).ok())
                .await?;
        }
        Ok(Handled::Attempted {
            status: outcome.status,
            attempt: attempt_number,
        })
    }

    /// Make sure the next automatic attempt of a retrying delivery is on its way: on the
    /// queue (with a delay) when it is due within the queue's longest delay, otherwise in
    /// the due list. Repeating this is harmless: a duplicate job records nothing.
    async fn follow_up(&self, d: &Delivery, payload: Option<&str>) -> Result<(), SendError> {
        let (DeliveryStatus::Retrying, Some(at), false) = (d.status, d.next_attempt_at, d.held)
        else {
            return Ok(());
        };
        let next = d.attempt_count() + 1;
        let wait = until(at, now());
        if wait <= self.queue.max_delay() {
            self.queue
                .enqueue(vec![(delivery_job(d, payload).automatic(next), wait)])
                .await?;
        } else {
            self.schedule
                .schedule(&ScheduledAttempt {
                    at,
                    attempt: next,
                    job: delivery_job(d, None),
                })
                .await?;
        }
        Ok(())
    }

    /// The envelope: carried by the job (taken from it, not copied), or read from the
    /// event.
    async fn payload(&self, job: &mut DeliveryJob) -> Result<Option<Bytes>, SendError> {
        if let Some(payload) = job.payload.take() {
            return Ok(Some(Bytes::from(payload)));
        }
        Ok(self
            .events
            .get_event(&job.org, &job.event.id)
            .await?
            .map(|e| Bytes::from(e.payload)))
    }

    /// Where a delivery goes after automatic attempt `attempt_number` ended as `result`: succeeded;
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

    /// `true` if this paused it (it may have been paused already).
    async fn pause_gone(&self, endpoint: &Endpoint, at: DateTime<Utc>) -> Result<bool, SendError> {
        let paused = self
            .health
            .pause_endpoint(
                &endpoint.org,
                endpoint.id,
                Pause {
                    by: PausedBy::Gone,
                    at,
                    min_failures: None,
                },
            )
            .await?;
        if paused {
            tracing::warn!(org = %endpoint.org, endpoint_id = %endpoint.id, "endpoint answered 410 Gone: paused");
        }
        Ok(paused)
    }

    /// Hold the job's delivery until its endpoint is resumed (as stored now, or as the
    /// job describes it if the publish has not written it yet). For an inactive
    /// endpoint, check once more afterwards: if it was resumed meanwhile, its resume job
    /// may already have run, so re-queue at once.
    async fn hold(&self, work: &Work, recheck: Recheck) -> Result<Handled, SendError> {
        let at = now();
        let current = match self.deliveries.get_delivery(work.key).await? {
            Some(d) => d,
            None => work.seed(),
        };
        if !current.meets(work.expect) || !self.deliveries.hold(&current, work.expect, at).await? {
            return Ok(Handled::Skipped);
        }
        if recheck == Recheck::No {
            return Ok(Handled::Held);
        }
        let resumed = self
            .endpoints
            .get_endpoint(&work.job.org, work.job.endpoint_id)
            .await?
            .is_some_and(|e| e.is_active);
        if resumed && let Some(job) = self.release(&current.on_hold(at), at).await? {
            self.queue.enqueue(vec![(job, Duration::ZERO)]).await?;
        }
        Ok(Handled::Held)
    }

    /// Release a held delivery of a resumed endpoint: the job to queue for it, if any. A
    /// release refused may have been this one's own write (applied, answered with an
    /// error, sent again by the SDK and refused by its condition): the delivery is read,
    /// and if it is released and due its job is queued all the same (released by another
    /// resume pass, it gets a second job, which records nothing twice).
    async fn release(&self, held: &Delivery, at: DateTime<Utc>) -> Result<Option<Job>, SendError> {
        if self.deliveries.resume_delivery(held, at).await? {
            return Ok(Some(next_job(held)));
        }
        Ok(self
            .deliveries
            .get_delivery(held.key)
            .await?
            .filter(|d| !d.held && d.status.is_due())
            .map(|d| next_job(&d)))
    }

    /// Re-queue a chunk of a resumed endpoint's held deliveries.
    async fn resume(&self, org: &OrgSlug, endpoint_id: Uuid) -> Result<Handled, SendError> {
        let Some(endpoint) = self
            .endpoints
            .get_endpoint(org, endpoint_id)
            .await?
            .filter(|e| e.is_active)
        else {
            return Ok(Handled::Skipped);
        };
        let held = self
            .deliveries
            .held_deliveries(endpoint.number, CHUNK)
            .await?;
        let at = now();
        let mut jobs = Vec::with_capacity(held.len());
        for d in &held {
            if let Some(job) = self.release(d, at).await? {
                jobs.push((job, Duration::ZERO));
            }
        }
        let more = held.len() == CHUNK as usize;
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

    /// Delete a chunk of a deleted endpoint's deliveries.
    async fn purge(
        &self,
        org: &OrgSlug,
        endpoint_id: Uuid,
        number: EndpointNumber,
    ) -> Result<Handled, SendError> {
        if self
            .endpoints
            .get_endpoint(org, endpoint_id)
            .await?
            .is_some()
        {
            // The endpoint exists: this job is not for it (its delete did not happen).
            return Ok(Handled::Skipped);
        }
        let done = self.deliveries.purge_deliveries(number, CHUNK).await?;
        let more = done == CHUNK as usize;
        if more {
            let again = Job::PurgeEndpoint {
                v: crate::domain::job::JOB_VERSION,
                org: org.to_owned(),
                endpoint_id,
                endpoint_number: number,
            };
            self.queue.enqueue(vec![(again, Duration::ZERO)]).await?;
        }
        Ok(Handled::Chunk { done, more })
    }

    /// Re-send a chunk of a recovery's failed deliveries as manual retries, record how
    /// far it got, and queue the job again for the rest. A request is opened only on a
    /// delivery still `failed`, so one that succeeded since it was listed is left alone.
    /// Handled twice (a duplicate message), a chunk's retries are requested twice: the
    /// second request replaces the first, whose job then makes no attempt if it has not
    /// run yet (at least once, then, as every delivery); and only one handling can move
    /// the record on, so only one goes on to the next chunk.
    async fn recover(&self, org: &OrgSlug, id: Uuid) -> Result<Handled, SendError> {
        let Some(recovery) = self
            .recoveries
            .get_recovery(org, id)
            .await?
            .filter(|r| r.status == RecoveryStatus::Running)
        else {
            return Ok(Handled::Skipped);
        };
        let exists = self
            .endpoints
            .get_endpoint(org, recovery.endpoint_id)
            .await?
            .is_some();
        let (failed, more) = if exists {
            self.deliveries
                .failed_deliveries(
                    recovery.endpoint_number,
                    recovery.since,
                    recovery.until,
                    recovery.position,
                    CHUNK,
                )
                .await?
        } else {
            // Deleted meanwhile: nothing is left to re-send.
            (Vec::new(), false)
        };
        let requests = failed.iter().map(|d| async move {
            let request = Uuid::now_v7();
            let requested = self
                .deliveries
                .request_retry(d.key, request, RetryOf::Failed)
                .await?;
            Ok::<_, StoreError>(requested.map(|d| delivery_job(&d, None).manual(request)))
        });
        let jobs: Vec<(Job, Duration)> = futures_util::future::try_join_all(requests)
            .await?
            .into_iter()
            .flatten()
            .map(|job| (job, Duration::ZERO))
            .collect();
        let queued = jobs.len();
        self.queue.enqueue(jobs).await?;
        let position = failed.last().map(failed_position).or(recovery.position);
        let next = recovery.advanced(position, queued as u64, !more, now());
        if !self.recoveries.advance_recovery(&recovery, &next).await? {
            return Ok(Handled::Skipped);
        }
        if more {
            let again = Job::RecoverEndpoint {
                v: crate::domain::job::JOB_VERSION,
                org: org.to_owned(),
                recovery_id: id,
            };
            self.queue.enqueue(vec![(again, Duration::ZERO)]).await?;
        } else {
            tracing::info!(org = org.as_str(), recovery_id = %id, queued = next.queued, "recovery done");
        }
        Ok(Handled::Chunk { done: queued, more })
    }
}
