//! Publishing an event: store it once, then for each target endpoint take the next
//! number of its history, enqueue the first attempt, and write the delivery.
//!
//! The job is enqueued before the delivery is written, so a delivery the publish wrote
//! on its way has its job: if the publish dies after enqueueing, the sender writes the
//! delivery itself when it records the first attempt. If it dies before, nothing was
//! stored but the event, the client got an error, and its retry (same id) completes the
//! fan-out.
//!
//! A request reported failed may have been applied, so a publish that fails after
//! numbering still writes every delivery it numbered (their jobs may be on the queue),
//! then gives its hold up: the client's retry finds them, makes sure of the first job of
//! each not yet tried (a job sent twice is harmless: its attempt is recorded once), and
//! numbers only the targets still without a delivery. Every hold write names its writer,
//! so a hold write sent again finds it already taken by that writer.
//!
//! Before anything is stored, the queue admits the publish's jobs (a bounded queue may
//! refuse: then nothing at all is stored, and the same request succeeds later); the
//! room it holds is given back once the jobs are on the queue.

use crate::domain::OrgSlug;
use crate::domain::time::rfc3339_millis;
use crate::domain::{
    Delivery, DeliveryJob, DeliveryStatus, Endpoint, Event, EventRef, Job, Target, now,
};
use crate::ports::{
    DeliveryStore, EndpointStore, EventStore, JobQueue, QueueError, QueueFull, StoreError,
    StoreResult,
};
use chrono::{DateTime, Utc};
use futures_util::future::{join_all, try_join_all};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use uuid::Uuid;

pub struct PublishRequest {
    /// The publisher's id for the event; a repeat creates nothing new.
    pub id: Option<String>,
    pub event_type: String,
    pub data: serde_json::Value,
}

/// Which endpoints get the event.
pub enum Audience {
    /// Every endpoint of the org subscribed to the event type.
    Subscribers,
    /// One endpoint, whatever it subscribes to (the `/test` route).
    Endpoint(Uuid),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub event_id: String,
    pub deliveries: u32,
    /// Ids of the deliveries this call created (empty for a repeated id).
    pub delivery_ids: Vec<Uuid>,
}

#[derive(Debug, Error)]
pub enum PublishError {
    #[error("no such endpoint")]
    UnknownEndpoint,
    /// The id was published before with another type or data.
    #[error("event id reused with different content")]
    IdReused,
    /// Another publish with this id is still writing its deliveries; its hold ends in
    /// `retry_after`.
    #[error("another publish with this id is in progress")]
    InProgress { retry_after: Duration },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The queue has no room for the event's jobs: nothing was stored.
    #[error(transparent)]
    Overloaded(#[from] QueueFull),
}

/// How long the publish that writes an event's deliveries holds the fan-out: well past
/// the longest an API invocation can live (the functions' timeout is 10 s), so a live
/// writer is never taken over.
pub const FAN_OUT_HOLD: Duration = Duration::from_secs(30);
/// How long a repeated publish waits for a live writer to finish before answering
/// `InProgress` (the client retries; a writer usually finishes in milliseconds).
const WAIT_FOR_WRITER: Duration = Duration::from_secs(5);
/// Clocks of different machines may disagree by this much.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(2);
/// How many times a write whose repeat is harmless is sent before the publish gives up
/// (after the SDK's own retries): a delivery's conditional create, the first attempts'
/// enqueue, a hold write.
const TRIES: u32 = 3;

/// The fan-out as one writer holds it: until when, and the writer's token (its hold
/// writes succeed again when repeated).
#[derive(Clone, Copy)]
struct Hold {
    until: DateTime<Utc>,
    holder: Uuid,
}

/// `call`, sent again while it fails, up to [`TRIES`] times in all.
async fn tried<T, E, F, Fut>(mut call: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut tries = 1;
    loop {
        match call().await {
            Err(err) if tries < TRIES => {
                tracing::warn!(error = %err, tries, "failed; sending it again");
                tokio::time::sleep(Duration::from_millis(20) * tries).await;
                tries += 1;
            }
            result => return result,
        }
    }
}

/// The envelope receivers get, in this field order.
#[derive(Serialize)]
struct Envelope<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    #[serde(with = "rfc3339_millis")]
    created_at: DateTime<Utc>,
    org: &'a str,
    data: &'a serde_json::Value,
}

#[derive(Clone)]
pub struct Publisher {
    pub endpoints: Arc<dyn EndpointStore>,
    pub deliveries: Arc<dyn DeliveryStore>,
    pub events: Arc<dyn EventStore>,
    pub queue: Arc<dyn JobQueue>,
}

fn fan_out_hold() -> chrono::Duration {
    chrono::Duration::from_std(FAN_OUT_HOLD).unwrap_or_default()
}

/// A delivery written whose first job may never have been sent: no attempt yet, and
/// waiting for one.
fn untried(d: &Delivery) -> bool {
    d.attempts.is_empty() && !d.held && d.status == DeliveryStatus::Pending
}

fn target_of(endpoint: &Endpoint) -> Target {
    Target {
        endpoint_id: endpoint.id,
        endpoint_number: endpoint.number,
        seq_floor: endpoint.delivery_seq,
    }
}

/// The first job of a delivery, carrying its envelope.
pub fn first_job(event: &Event, delivery: &Delivery) -> Job {
    DeliveryJob::new(
        &event.org,
        delivery.endpoint_id,
        delivery.id,
        event_ref(event),
        Some(&event.payload),
    )
    .automatic(1)
}

pub fn event_ref(event: &Event) -> EventRef {
    EventRef {
        id: event.id.clone(),
        event_type: event.event_type.clone(),
        created_at: event.created_at,
    }
}

impl Publisher {
    pub async fn publish(
        &self,
        org: &OrgSlug,
        request: PublishRequest,
        audience: Audience,
    ) -> Result<Published, PublishError> {
        let event_id = request
            .id
            .clone()
            .unwrap_or_else(|| Uuid::now_v7().to_string());
        let targets = self.targets(org, &request.event_type, audience).await?;
        // Held until the fan-out is done: its first attempts are on the queue by then.
        let _room = self
            .queue
            .admit(targets.iter().filter(|e| e.is_active).count())?;
        let created_at = now();
        let hold = Hold {
            until: created_at + fan_out_hold(),
            holder: Uuid::now_v7(),
        };
        let payload = serde_json::to_string(&Envelope {
            id: &event_id,
            event_type: &request.event_type,
            created_at,
            org,
            data: &request.data,
        })
        .map_err(|e| StoreError::Backend(format!("envelope: {e}")))?;
        let event = Event {
            org: org.to_owned(),
            id: event_id,
            event_type: request.event_type.clone(),
            created_at,
            payload,
            targets: targets.iter().map(target_of).collect(),
            fan_out_until: Some(hold.until),
            fan_out_holder: Some(hold.holder),
        };
        // One write: it stores the event, or hands back the one already stored. That one
        // is this publish's own when its write was applied, answered with an error and
        // sent again by the SDK: it names this writer, which carries on holding it.
        match self.events.insert_event(&event).await {
            Ok(None) => {
                self.fan_out_holding(&event, hold, targets, Vec::new())
                    .await
            }
            Ok(Some(existing)) if existing.fan_out_holder == Some(hold.holder) => {
                self.fan_out_holding(&event, hold, targets, Vec::new())
                    .await
            }
            Ok(Some(existing)) => self.repeat(existing, &request).await,
            Err(err) => {
                // It may have been stored, holding a fan-out nobody is doing.
                self.release(&event, hold).await;
                Err(err.into())
            }
        }
    }

    /// A repeated id: the same content answers as the first publish did, other content is
    /// refused. A fan-out that is not complete is waited for while its writer holds it,
    /// and completed once the writer's hold has passed (it died half-way): one writer at
    /// a time, so no delivery takes two sequence numbers.
    async fn repeat(
        &self,
        mut event: Event,
        request: &PublishRequest,
    ) -> Result<Published, PublishError> {
        if !event.has_content(&request.event_type, &request.data) {
            return Err(PublishError::IdReused);
        }
        let give_up = tokio::time::Instant::now() + WAIT_FOR_WRITER;
        let mut pause = Duration::from_millis(20);
        let holder = Uuid::now_v7();
        loop {
            let written = self.written(&event).await?;
            let at = now();
            let live = event.fan_out_until.filter(|until| *until > at);
            if written.iter().all(Option::is_some) {
                if live.is_none() {
                    // Its writer may have failed after writing them, its jobs unsent.
                    self.resend_untried(&event, written.iter().flatten())
                        .await?;
                }
                return Ok(Published {
                    event_id: event.id.clone(),
                    deliveries: event.delivery_count(),
                    delivery_ids: Vec::new(),
                });
            }
            match live {
                Some(until) => {
                    if tokio::time::Instant::now() + pause > give_up {
                        return Err(PublishError::InProgress {
                            retry_after: (until - at).to_std().unwrap_or_default(),
                        });
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                None => {
                    let hold = Hold {
                        until: at + fan_out_hold(),
                        holder,
                    };
                    if self.take_over(&event, hold).await? {
                        event.fan_out_until = Some(hold.until);
                        event.fan_out_holder = Some(holder);
                        return self.complete(&event, hold, written).await;
                    }
                }
            }
            event = self
                .events
                .get_event(&event.org, &event.id)
                .await?
                .ok_or_else(|| StoreError::Backend("event vanished during a repeat".into()))?;
        }
    }

    /// Take the fan-out over from the holder `event` shows. A write that keeps failing
    /// may have been applied: it is given up before the error is answered, so the
    /// client's retry is not locked out for the whole hold.
    async fn take_over(&self, event: &Event, hold: Hold) -> Result<bool, PublishError> {
        let taken = tried(|| {
            self.events.take_over_fan_out(
                &event.org,
                &event.id,
                event.fan_out_until,
                hold.until,
                hold.holder,
            )
        })
        .await;
        if taken.is_err() {
            self.release(event, hold).await;
        }
        Ok(taken?)
    }

    /// Give the hold up if this writer still holds it (best effort: should it fail, a
    /// repeat waits for the hold to pass).
    async fn release(&self, event: &Event, hold: Hold) {
        let released = tried(|| {
            self.events.take_over_fan_out(
                &event.org,
                &event.id,
                Some(hold.until),
                now(),
                hold.holder,
            )
        })
        .await;
        if let Err(err) = released {
            tracing::warn!(org = %event.org, event_id = %event.id, error = %err, "fan-out hold not released; a repeat waits for it to pass");
        }
    }

    /// A taken-over fan-out: the targets still without a delivery are numbered, and the
    /// first jobs of the deliveries written but not tried yet are sent again.
    async fn complete(
        &self,
        event: &Event,
        hold: Hold,
        written: Vec<Option<Delivery>>,
    ) -> Result<Published, PublishError> {
        let missing = match self.missing_targets(event, &written).await {
            Ok(missing) => missing,
            Err(err) => {
                // Nothing numbered yet: nothing for the retry to miss.
                self.release(event, hold).await;
                return Err(err.into());
            }
        };
        let untried = written.into_iter().flatten().filter(untried).collect();
        self.fan_out_holding(event, hold, missing, untried).await
    }

    /// Send again the first jobs of `deliveries` not tried yet.
    async fn resend_untried(
        &self,
        event: &Event,
        deliveries: impl Iterator<Item = &Delivery>,
    ) -> Result<(), PublishError> {
        let jobs: Vec<_> = deliveries
            .filter(|d| untried(d))
            .map(|d| (first_job(event, d), Duration::ZERO))
            .collect();
        if !jobs.is_empty() {
            self.queue.enqueue(jobs).await?;
        }
        Ok(())
    }

    /// Each target's delivery of `event`, if written. Its number was taken after the
    /// number the publish saw (`seq_floor`) and before the last fan-out hold ended, so
    /// each search reads a few items past the floor at most.
    async fn written(&self, event: &Event) -> StoreResult<Vec<Option<Delivery>>> {
        let created_before = event.fan_out_until.unwrap_or(event.created_at) + CLOCK_SKEW;
        try_join_all(event.targets.iter().map(|t| {
            self.deliveries.find_event_delivery(
                t.endpoint_number,
                t.seq_floor,
                &event.id,
                created_before,
            )
        }))
        .await
    }

    /// The targets still without a delivery, as they are now (a deleted one is dropped).
    async fn missing_targets(
        &self,
        event: &Event,
        written: &[Option<Delivery>],
    ) -> StoreResult<Vec<Endpoint>> {
        let mut missing = Vec::new();
        for (target, delivery) in event.targets.iter().zip(written) {
            if delivery.is_none()
                && let Some(endpoint) = self
                    .endpoints
                    .get_endpoint(&event.org, target.endpoint_id)
                    .await?
            {
                missing.push(endpoint);
            }
        }
        Ok(missing)
    }

    /// The fan-out, while holding the event's fan-out: number each target, enqueue the
    /// first attempts (with `untried`'s, from an earlier writer), write the deliveries.
    /// On a failure, every delivery numbered is written all the same (its job may be on
    /// the queue: a request reported failed may have been applied), and only then is the
    /// hold given up, so that the client's retry proceeds at once and finds them instead
    /// of numbering their targets again. Should a numbered delivery stay unwritten, the
    /// hold is kept: a repeat waits for it to pass.
    async fn fan_out_holding(
        &self,
        event: &Event,
        hold: Hold,
        targets: Vec<Endpoint>,
        untried: Vec<Delivery>,
    ) -> Result<Published, PublishError> {
        let (deliveries, numbered) = self.number(event, &targets).await;
        let jobs: Vec<(Job, Duration)> = deliveries
            .iter()
            .chain(&untried)
            .filter(|d| !d.held)
            .map(|d| (first_job(event, d), Duration::ZERO))
            .collect();
        let enqueued = if jobs.is_empty() {
            Ok(())
        } else {
            tried(|| self.queue.enqueue(jobs.clone())).await
        };
        // Every write is made, whichever fails.
        let written: StoreResult<Vec<bool>> = join_all(
            deliveries
                .iter()
                .map(|d| tried(|| self.deliveries.insert_delivery(d))),
        )
        .await
        .into_iter()
        .collect();
        let all_written = written.is_ok();
        let result = async {
            numbered?;
            enqueued?;
            written?;
            for held in deliveries.iter().filter(|d| d.held) {
                self.release_if_resumed(event, held).await?;
            }
            Ok::<_, PublishError>(())
        }
        .await;
        if let Err(err) = result {
            if all_written {
                self.release(event, hold).await;
            } else {
                tracing::warn!(org = %event.org, event_id = %event.id, "a numbered delivery is not written: the fan-out hold is kept");
            }
            return Err(err);
        }
        tracing::info!(org = %event.org, event_id = %event.id, event_type = %event.event_type, deliveries = deliveries.len(), "event published");
        Ok(Published {
            event_id: event.id.clone(),
            deliveries: event.delivery_count(),
            delivery_ids: deliveries.iter().map(|d| d.id).collect(),
        })
    }

    /// A number for each target, concurrently (latency does not grow with the
    /// subscriber count); an endpoint deleted since it was chosen simply gets nothing.
    /// The deliveries of the targets numbered, and the first failure if any.
    async fn number(
        &self,
        event: &Event,
        targets: &[Endpoint],
    ) -> (Vec<Delivery>, StoreResult<()>) {
        let numbered = join_all(targets.iter().map(|endpoint| async {
            let seq = self
                .deliveries
                .next_delivery_seq(&event.org, endpoint.id)
                .await?;
            Ok::<_, StoreError>(
                seq.map(|seq| Delivery::new(event, &target_of(endpoint), seq, endpoint.is_active)),
            )
        }))
        .await;
        let mut deliveries = Vec::new();
        let mut outcome = Ok(());
        for result in numbered {
            match result {
                Ok(delivery) => deliveries.extend(delivery),
                Err(err) => outcome = Err(err),
            }
        }
        (deliveries, outcome)
    }

    /// A delivery written held for an endpoint that was resumed after it was listed:
    /// the resume job may already have run, so release it here.
    async fn release_if_resumed(&self, event: &Event, d: &Delivery) -> Result<(), PublishError> {
        let active = self
            .endpoints
            .get_endpoint(&d.org, d.endpoint_id)
            .await?
            .is_some_and(|e| e.is_active);
        if active && self.deliveries.resume_delivery(d, now()).await? {
            self.queue
                .enqueue(vec![(first_job(event, d), Duration::ZERO)])
                .await?;
        }
        Ok(())
    }

    async fn targets(
        &self,
        org: &OrgSlug,
        event_type: &str,
        audience: Audience,
    ) -> Result<Vec<Endpoint>, PublishError> {
        Ok(match audience {
            Audience::Subscribers => self
                .endpoints
                .list_endpoints(org)
                .await?
                .into_iter()
                .filter(|e| e.event_types.iter().any(|t| t == event_type))
                .collect(),
            Audience::Endpoint(id) => vec![
                self.endpoints
                    .get_endpoint(org, id)
                    .await?
                    .ok_or(PublishError::UnknownEndpoint)?,
            ],
        })
    }
}
