//! Publishing an event: store it once, create one delivery per target endpoint, enqueue.
//!
//! The event and its deliveries are written before anything is enqueued, and every new
//! delivery is due at once, so if enqueueing fails the recovery sweep still sends them.

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
    #[error(transparent)]
    Store(#[from] StoreError),
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

impl Publisher {
    pub async fn publish(
        &self,
        org: &str,
        request: PublishRequest,
        audience: Audience,
    ) -> Result<Published, PublishError> {
        let event_id = request.id.unwrap_or_else(|| Uuid::now_v7().to_string());
        if let Some(existing) = self.events.get_event(org, &event_id).await? {
            return Ok(repeat(existing));
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
            event_type: request.event_type,
            created_at,
            payload,
            delivery_count: u32::try_from(targets.len()).unwrap_or(u32::MAX),
        };
        match self.events.insert_event(&event).await {
            Ok(()) => {}
            // A concurrent publish with the same id won: answer with its result.
            Err(StoreError::AlreadyExists) => {
                let existing = self.events.get_event(org, &event.id).await?;
                return existing
                    .map(repeat)
                    .ok_or(PublishError::Store(StoreError::AlreadyExists));
            }
            Err(e) => return Err(e.into()),
        }

        // One delivery per target, written concurrently: publish latency does not grow
        // with the number of subscribers. An endpoint deleted since it was listed gets none.
        let created: Vec<Delivery> = try_join_all(targets.iter().map(|endpoint| async {
            let Some(seq) = self.deliveries.next_delivery_seq(org, endpoint.id).await? else {
                return Ok::<_, StoreError>(None);
            };
            let delivery = Delivery::new(&event, endpoint.id, seq, endpoint.is_active);
            self.deliveries.insert_delivery(&delivery).await?;
            Ok(Some(delivery))
        }))
        .await?
        .into_iter()
        .flatten()
        .collect();

        let jobs: Vec<(Job, Duration)> = created
            .iter()
            .filter(|d| d.status == DeliveryStatus::Pending)
            .map(|d| (Job::automatic(d.id, 1, None), Duration::ZERO))
            .collect();
        if let Err(err) = self.queue.enqueue(jobs).await {
            // Stored and due: the recovery sweep enqueues them shortly.
            tracing::warn!(org, event_id = %event.id, error = %err, "enqueue failed; the sweep will send these deliveries");
        }
        tracing::info!(org, event_id = %event.id, event_type = %event.event_type, deliveries = created.len(), "event published");
        Ok(Published {
            event_id: event.id,
            deliveries: u32::try_from(created.len()).unwrap_or(u32::MAX),
            delivery_ids: created.iter().map(|d| d.id).collect(),
        })
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

fn repeat(existing: Event) -> Published {
    Published {
        event_id: existing.id,
        deliveries: existing.delivery_count,
        delivery_ids: Vec::new(),
    }
}
