//! Publishing an event: store it once, then for each target endpoint take the next
//! number of its history, enqueue the first attempt, and write the delivery.
//!
//! The job is enqueued before the delivery is written, so nothing stored can miss its
//! job: if the publish dies after enqueueing, the sender writes the delivery itself when
//! it records the first attempt. If it dies before, nothing was stored but the event,
//! the client got an error, and its retry (same id) completes the fan-out.
//!
//! Before anything is stored, the queue admits the publish's jobs (a bounded queue may
//! refuse: then nothing at all is stored, and the same request succeeds later); the
//! room it holds is given back once the jobs are on the queue.

use crate::domain::OrgSlug;
use crate::domain::time::rfc3339_millis;
use crate::domain::{Delivery, DeliveryJob, Endpoint, Event, EventRef, Job, Target, now};
use crate::ports::{
    DeliveryStore, EndpointStore, EventStore, JobQueue, QueueError, QueueFull, StoreError,
    StoreResult,
};
use chrono::{DateTime, Utc};
use futures_util::future::try_join_all;
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
    /// Another publish with this id is still writing its deliveries.
    #[error("another publish with this id is in progress")]
    InProgress,
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
            fan_out_until: Some(created_at + fan_out_hold()),
        };
        // One write: it stores the event, or hands back the one already stored.
        match self.events.insert_event(&event).await? {
            None => self.fan_out_holding(&event, targets).await,
            Some(existing) => self.repeat(existing, &request).await,
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
        loop {
            let written = self.written(&event).await?;
            if written.iter().all(Option::is_some) {
                return Ok(Published {
                    event_id: event.id.clone(),
                    deliveries: event.delivery_count(),
                    delivery_ids: Vec::new(),
                });
            }
            let at = now();
            match event.fan_out_until {
                Some(until) if until > at => {
                    if tokio::time::Instant::now() + pause > give_up {
                        return Err(PublishError::InProgress);
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                seen => {
                    let until = at + fan_out_hold();
                    if self
                        .events
                        .take_over_fan_out(&event.org, &event.id, seen, until)
                        .await?
                    {
                        event.fan_out_until = Some(until);
                        let missing = self.missing_targets(&event, &written).await?;
                        return self.fan_out_holding(&event, missing).await;
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

    /// The fan-out, while holding the event's fan-out. Should it fail before any first
    /// attempt is on the queue, the hold is given up, so the client's retry takes over at
    /// once instead of waiting it out. Once they are on the queue, a failure keeps the
    /// hold, as a publish that died would: the sender writes each delivery this call did
    /// not when it records its first attempt, and a repeat taking over now would number
    /// those deliveries again and send them twice.
    async fn fan_out_holding(
        &self,
        event: &Event,
        targets: Vec<Endpoint>,
    ) -> Result<Published, PublishError> {
        let result = match self.enqueue_first_attempts(event, targets).await {
            Ok(deliveries) if deliveries.iter().any(|d| !d.held) => {
                return self.write_deliveries(event, deliveries).await;
            }
            // Nothing on the queue (every target inactive): nothing to wait for either.
            Ok(deliveries) => self.write_deliveries(event, deliveries).await,
            Err(err) => Err(err),
        };
        if result.is_err()
            && let Err(err) = self
                .events
                .take_over_fan_out(&event.org, &event.id, event.fan_out_until, now())
                .await
        {
            tracing::warn!(org = %event.org, event_id = %event.id, error = %err, "fan-out hold not released; a repeat waits for it to pass");
        }
        result
    }

    /// For each target, concurrently (latency does not grow with the subscriber count):
    /// take a number, then enqueue every first attempt in one request. An endpoint
    /// deleted since it was chosen simply gets nothing.
    async fn enqueue_first_attempts(
        &self,
        event: &Event,
        targets: Vec<Endpoint>,
    ) -> Result<Vec<Delivery>, PublishError> {
        let numbered = try_join_all(targets.iter().map(|endpoint| async {
            let seq = self
                .deliveries
                .next_delivery_seq(&event.org, endpoint.id)
                .await?;
            Ok::<_, StoreError>(
                seq.map(|seq| Delivery::new(event, &target_of(endpoint), seq, endpoint.is_active)),
            )
        }))
        .await?;
        let deliveries: Vec<Delivery> = numbered.into_iter().flatten().collect();
        let jobs: Vec<(Job, Duration)> = deliveries
            .iter()
            .filter(|d| !d.held)
            .map(|d| (first_job(event, d), Duration::ZERO))
            .collect();
        self.queue.enqueue(jobs).await?;
        Ok(deliveries)
    }

    /// Then write the deliveries.
    async fn write_deliveries(
        &self,
        event: &Event,
        deliveries: Vec<Delivery>,
    ) -> Result<Published, PublishError> {
        try_join_all(
            deliveries
                .iter()
                .map(|d| self.deliveries.insert_delivery(d)),
        )
        .await?;
        for held in deliveries.iter().filter(|d| d.held) {
            self.release_if_resumed(event, held).await?;
        }
        tracing::info!(org = %event.org, event_id = %event.id, event_type = %event.event_type, deliveries = deliveries.len(), "event published");
        Ok(Published {
            event_id: event.id.clone(),
            deliveries: event.delivery_count(),
            delivery_ids: deliveries.iter().map(|d| d.id).collect(),
        })
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
