//! The narrow traits the domain talks to storage through. Each entry point depends only
//! on the ports it uses; every adapter passes the same contract tests (`tests/`).

#[cfg(doc)]
use crate::domain::Waiting;
use crate::domain::{
    ApiKey, Attempt, AttemptOutcome, Delivery, Endpoint, EndpointChanges, Event, Job, KeyHash,
    Lease, PostOutcome, SigningSecret,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use thiserror::Error;
use uuid::Uuid;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The organisation already has `limit` endpoints.
    #[error("the organisation already has the maximum of {limit} endpoints")]
    EndpointLimitReached { limit: usize },
    /// A conditional create found the item already there.
    #[error("the item already exists")]
    AlreadyExists,
    /// The backend failed; the text is for logs only and never reaches a client.
    #[error("storage backend error: {0}")]
    Backend(String),
}

/// Endpoints of an organisation. Every call is scoped by `org`: an id of another
/// organisation's endpoint behaves exactly like an unknown id.
#[async_trait]
pub trait EndpointStore: Send + Sync {
    /// Store a new endpoint unless the organisation already has `limit` of them.
    async fn insert_endpoint(&self, endpoint: &Endpoint, limit: usize) -> Result<(), StoreError>;
    /// Newest first.
    async fn list_endpoints(&self, org: &str) -> Result<Vec<Endpoint>, StoreError>;
    async fn get_endpoint(&self, org: &str, id: Uuid) -> Result<Option<Endpoint>, StoreError>;
    /// Apply `changes` atomically; `None` if there is no such endpoint.
    async fn update_endpoint(
        &self,
        org: &str,
        id: Uuid,
        changes: &EndpointChanges,
        now: DateTime<Utc>,
    ) -> Result<Option<Endpoint>, StoreError>;
    /// Replace the signing secret; `false` if there is no such endpoint.
    async fn replace_secret(
        &self,
        org: &str,
        id: Uuid,
        secret: &SigningSecret,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// `false` if there was no such endpoint.
    async fn delete_endpoint(&self, org: &str, id: Uuid) -> Result<bool, StoreError>;
}

/// API keys, found by the hash of the key.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// `AlreadyExists` if a key with the same hash is stored.
    async fn insert_key(&self, key: &ApiKey) -> Result<(), StoreError>;
    async fn find_key(&self, hash: &KeyHash) -> Result<Option<ApiKey>, StoreError>;
    /// `false` if no such key was stored.
    async fn delete_key(&self, hash: &KeyHash) -> Result<bool, StoreError>;
    /// Oldest first.
    async fn list_keys(&self, org: &str) -> Result<Vec<ApiKey>, StoreError>;
}

/// Events, stored once per publish.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// `AlreadyExists` if the organisation already has an event with this id.
    async fn insert_event(&self, event: &Event) -> Result<(), StoreError>;
    async fn get_event(&self, org: &str, id: &str) -> Result<Option<Event>, StoreError>;
    /// Record that every target's delivery is written.
    async fn mark_fanned_out(&self, org: &str, id: &str) -> Result<(), StoreError>;
    /// Take over an unfinished fan-out whose holder's time (`seen`, as last read) has
    /// passed: hold it until `until`. `false` if it finished or someone else took it.
    async fn take_over_fan_out(
        &self,
        org: &str,
        id: &str,
        seen: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

/// What an attempt claim must find for the sender to go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimFor {
    /// Automatic attempt number `n`: `attempt_count` is `n - 1` and the delivery is due.
    Attempt(u32),
    /// The manual retry request with this id is still open.
    Manual(Uuid),
}

/// Deliveries and their attempts.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Take the endpoint's next delivery sequence number; `None` if it no longer exists.
    async fn next_delivery_seq(
        &self,
        org: &str,
        endpoint_id: Uuid,
    ) -> Result<Option<u64>, StoreError>;
    /// `AlreadyExists` if a delivery with this id is stored.
    async fn insert_delivery(&self, delivery: &Delivery) -> Result<(), StoreError>;
    async fn get_delivery(&self, id: Uuid) -> Result<Option<Delivery>, StoreError>;
    /// In attempt order.
    async fn list_attempts(&self, id: Uuid) -> Result<Vec<Attempt>, StoreError>;
    /// Page `page` (from 1) of `per_page` of the endpoint's deliveries, newest first, and
    /// the total. Reads only that page, whatever its number. These are summaries: a
    /// store may leave `lease` and `manual_retry` empty (DynamoDB's `gsi1` omits them).
    async fn delivery_page(
        &self,
        endpoint: &Endpoint,
        page: u32,
        per_page: u32,
    ) -> Result<(Vec<Delivery>, u64), StoreError>;
    /// Take `lease` on the delivery if `claim` holds and no live lease exists. Returns the
    /// delivery as claimed, or `None` if the claim does not hold.
    async fn claim(
        &self,
        id: Uuid,
        claim: ClaimFor,
        lease: Lease,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError>;
    /// Store the attempt and the delivery's new state ([`Delivery::recorded`]) together,
    /// if `lease` is still held; the delivery as recorded, or `None` if the lease was
    /// not held (another sender took over): nothing is written then. `claimed` is the
    /// delivery as `claim` returned it, so no read comes first; a manual retry requested
    /// meanwhile stays open (the returned delivery shows it).
    async fn record_attempt(
        &self,
        claimed: &Delivery,
        lease: Uuid,
        attempt: &Attempt,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError>;
    /// Park a claimed delivery until its endpoint is resumed ([`Delivery::parked`]) and
    /// drop the lease.
    async fn hold(
        &self,
        claimed: &Delivery,
        lease: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Open a manual retry request ([`Delivery::retry_requested`]); `false` if there is
    /// no such delivery.
    async fn request_retry(
        &self,
        id: Uuid,
        request: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Up to `limit` held deliveries of an endpoint.
    async fn paused_deliveries(
        &self,
        endpoint_id: Uuid,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Release a held delivery ([`Delivery::resumed`]), given as last read. `false` if
    /// it is no longer held as read.
    async fn resume_delivery(
        &self,
        held: &Delivery,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Up to `limit` delivery ids of an endpoint (any order).
    async fn endpoint_delivery_ids(
        &self,
        endpoint_id: Uuid,
        limit: u32,
    ) -> Result<Vec<Uuid>, StoreError>;
    /// Delete deliveries with all their attempts.
    async fn delete_deliveries(&self, ids: &[Uuid]) -> Result<(), StoreError>;
    /// Up to `limit` deliveries due ([`Waiting::Due`]) at or before `before`, oldest due
    /// first.
    async fn due_deliveries(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Move a due delivery's `next_attempt_at` from `seen` to `at` (the recovery sweep
    /// re-queues it). `false` if it is no longer due at `seen`: a sender got there first.
    async fn touch_due(
        &self,
        id: Uuid,
        seen: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

/// The circuit breaker's counter on the endpoint, changed atomically.
#[async_trait]
pub trait EndpointHealth: Send + Sync {
    /// Add one failure; the new count, or `None` if the endpoint is gone.
    async fn record_failure(&self, org: &str, id: Uuid) -> Result<Option<u32>, StoreError>;
    /// Reset the count to zero, judged on the stored count (a conditional write that
    /// changes nothing when it is zero already).
    async fn record_success(&self, org: &str, id: Uuid) -> Result<(), StoreError>;
    /// Set `is_active: false` if it is active (and, with `min_failures`, only if the count
    /// reached it). `true` if this call paused it.
    async fn pause_endpoint(
        &self,
        org: &str,
        id: Uuid,
        min_failures: Option<u32>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

#[derive(Debug, Error)]
#[error("queue error: {0}")]
pub struct QueueError(pub String);

/// The delivery queue: SQS in AWS, an in-process queue locally.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Enqueue jobs, each visible after its delay (capped at the queue's maximum).
    async fn enqueue(&self, jobs: Vec<(Job, std::time::Duration)>) -> Result<(), QueueError>;
}

/// The outbound HTTP client the sender posts through (SSRF-guarded in production).
#[async_trait]
pub trait WebhookTransport: Send + Sync {
    async fn post(&self, url: &str, headers: &[(&str, String)], body: bytes::Bytes) -> PostOutcome;
}
