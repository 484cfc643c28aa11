//! Publishing an event: store it once, create one delivery per target endpoint, enqueue.
//!
//! The event and its deliveries are written before anything is enqueued, and every new
//! delivery is due at once, so if enqueueing fails the recovery sweep still sends them.

use super::sender::next_job;
use crate::domain::time::rfc3339_millis;
use crate::domain::{Delivery, DeliveryStatus, Endpoint, Event, Job, now};
use crate::ports::{DeliveryStore, EndpointStore, EventStore, JobQueue, StoreError};
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
}

/// How long the publish that writes an event's deliveries holds the fan-out: well past
/// the longest an API invocation can live (the functions' timeout is 10 s), so a live
/// writer is never taken over.
pub const FAN_OUT_HOLD: Duration = Duration::from_secs(30);
/// How long a repeated publish waits for a live writer to finish before answering
/// `InProgress` (the client retries; a writer usually finishes in milliseconds).
const WAIT_FOR_WRITER: Duration = Duration::from_secs(5);

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

impl Publisher {
    pub async fn publish(
        &self,
        org: &str,
        request: PublishRequest,
        audience: Audience,
    ) -> Result<Published, PublishError> {
        let event_id = request
            .id
            .clone()
            .unwrap_or_else(|| Uuid::now_v7().to_string());
        if let Some(existing) = self.events.get_event(org, &event_id).await? {
            return self.repeat(existing, &request).await;
        }
        let targets = self.targets(org, &request.event_type, audience).await?;
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
            targets: targets.iter().map(|e| e.id).collect(),
            fanned_out: false,
            fan_out_until: Some(created_at + fan_out_hold()),
        };
        match self.events.insert_event(&event).await {
            Ok(()) => self.fan_out_holding(event, targets, false).await,
            // A concurrent publish with the same id won.
            Err(StoreError::AlreadyExists) => match self.events.get_event(org, &event.id).await? {
                Some(existing) => self.repeat(existing, &request).await,
                None => Err(StoreError::AlreadyExists.into()),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// A repeated id: the same content answers as the first publish did, other content is
    /// refused. An unfinished fan-out is waited for while its writer holds it, and taken
    /// over and completed once the writer's hold has passed (it died half-way): one
    /// writer at a time, so no delivery takes two sequence numbers.
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
            if event.fanned_out {
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
                        return self.resume(event).await;
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

    /// Complete a fan-out that died half-way (deliveries have ids derived from event and
    /// endpoint, so none is written twice).
    async fn resume(&self, event: Event) -> Result<Published, PublishError> {
        let mut endpoints = Vec::with_capacity(event.targets.len());
        for id in &event.targets {
            if let Some(endpoint) = self.endpoints.get_endpoint(&event.org, *id).await? {
                endpoints.push(endpoint);
            }
        }
        self.fan_out_holding(event, endpoints, true).await
    }

    /// [`Self::fan_out`] while holding the event's fan-out: should it fail, the hold is
    /// given up, so the client's retry takes over at once instead of waiting it out.
    async fn fan_out_holding(
        &self,
        event: Event,
        targets: Vec<Endpoint>,
        resuming: bool,
    ) -> Result<Published, PublishError> {
        let (org, id, held) = (event.org.clone(), event.id.clone(), event.fan_out_until);
        let result = self.fan_out(event, targets, resuming).await;
        if result.is_err()
            && let Err(err) = self.events.take_over_fan_out(&org, &id, held, now()).await
        {
            tracing::warn!(org = %org, event_id = %id, error = %err, "fan-out hold not released; a repeat waits for it to pass");
        }
        result
    }

    /// Write one delivery per target (concurrently, so latency does not grow with the
    /// subscriber count), mark the event fanned out, then enqueue. Every new delivery is
    /// due at once: if the enqueue fails, the recovery sweep sends them. When `resuming`
    /// a fan-out that died, deliveries already written are kept (and queued again if
    /// still pending: a duplicate job is harmless).
    async fn fan_out(
        &self,
        event: Event,
        targets: Vec<Endpoint>,
        resuming: bool,
    ) -> Result<Published, PublishError> {
        let created: Vec<Delivery> = try_join_all(targets.iter().map(|endpoint| async {
            let id = Delivery::id_for(&event, endpoint.id);
            if resuming && let Some(written) = self.deliveries.get_delivery(id).await? {
                // Written before the first publish died, perhaps never enqueued.
                return Ok::<_, StoreError>(Some(written));
            }
            // An endpoint deleted since it was chosen simply gets nothing.
            let Some(seq) = self
                .deliveries
                .next_delivery_seq(&event.org, endpoint.id)
                .await?
            else {
                return Ok(None);
            };
            let delivery = Delivery::new(&event, endpoint.id, seq, endpoint.is_active);
            match self.deliveries.insert_delivery(&delivery).await {
                Ok(()) => Ok(Some(delivery)),
                Err(StoreError::AlreadyExists) => Ok(None),
                Err(e) => Err(e),
            }
        }))
        .await?
        .into_iter()
        .flatten()
        .collect();
        self.events.mark_fanned_out(&event.org, &event.id).await?;

        let mut jobs: Vec<(Job, Duration)> = Vec::with_capacity(created.len());
        for d in &created {
            let due = match d.status {
                DeliveryStatus::Pending => true,
                DeliveryStatus::Paused => self.resumed_meanwhile(d).await?,
                _ => false,
            };
            if due {
                jobs.push((next_job(d), Duration::ZERO));
            }
        }
        if let Err(err) = self.queue.enqueue(jobs).await {
            // Stored and due: the recovery sweep enqueues them shortly.
            tracing::warn!(org = %event.org, event_id = %event.id, error = %err, "enqueue failed; the sweep will send these deliveries");
        }
        tracing::info!(org = %event.org, event_id = %event.id, event_type = %event.event_type, deliveries = created.len(), "event published");
        Ok(Published {
            deliveries: event.delivery_count(),
            delivery_ids: created.iter().map(|d| d.id).collect(),
            event_id: event.id,
        })
    }

    /// A delivery written `paused` for an endpoint that was resumed after it was listed:
    /// the resume job may already have run, so release it here.
    async fn resumed_meanwhile(&self, d: &Delivery) -> Result<bool, StoreError> {
        let active = self
            .endpoints
            .get_endpoint(&d.org, d.endpoint_id)
            .await?
            .is_some_and(|e| e.is_active);
        Ok(active && self.deliveries.resume_delivery(d, now()).await?)
    }

    async fn targets(
        &self,
        org: &str,
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
