//! The narrow traits the domain talks to storage through. Each entry point depends only
//! on the ports it uses; every adapter passes the same contract tests (`tests/`).

use crate::domain::recovery::{FailedPosition, Recovery};
use crate::domain::stats::{HourlyCount, OrgHourCounts};
use crate::domain::{
    ApiKey, Attempt, AttemptOutcome, Delivery, DeliveryKey, Endpoint, EndpointChanges, Event,
    Expect, Job, KeyHash, PausedBy, PostOutcome, ScheduledAttempt, SigningSecret,
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
    /// A number for a new endpoint, never handed out before (see [`Endpoint::number`]).
    async fn allocate_endpoint_number(&self) -> Result<u32, StoreError>;
    /// Store a new endpoint unless the organisation already has `limit` of them.
    async fn insert_endpoint(&self, endpoint: &Endpoint, limit: usize) -> Result<(), StoreError>;
    /// Newest first.
    async fn list_endpoints(&self, org: &str) -> Result<Vec<Endpoint>, StoreError>;
    async fn get_endpoint(&self, org: &str, id: Uuid) -> Result<Option<Endpoint>, StoreError>;
    /// [`EndpointStore::get_endpoint`], but it may be a moment behind the latest change
    /// (an eventually consistent read, at half the price): what the sender reads before
    /// every attempt.
    async fn peek_endpoint(&self, org: &str, id: Uuid) -> Result<Option<Endpoint>, StoreError>;
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
    /// Record that the key was used at `at`; nothing if it is not stored (a revoked key
    /// is never written back).
    async fn record_key_use(&self, hash: &KeyHash, at: DateTime<Utc>) -> Result<(), StoreError>;
}

/// Events, stored once per publish.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Store a new event. If the organisation already has an event with its id, nothing
    /// is written and that event is returned instead (one request either way).
    async fn insert_event(&self, event: &Event) -> Result<Option<Event>, StoreError>;
    async fn get_event(&self, org: &str, id: &str) -> Result<Option<Event>, StoreError>;
    /// Take over (or give up, with `until` in the past) the fan-out of an event from the
    /// holder last seen (`seen`): hold it until `until`. `false` if someone else holds it
    /// now.
    async fn take_over_fan_out(
        &self,
        org: &str,
        id: &str,
        seen: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

/// Deliveries, each in its endpoint's history at its sequence number.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Take the endpoint's next delivery sequence number; `None` if it no longer exists.
    async fn next_delivery_seq(
        &self,
        org: &str,
        endpoint_id: Uuid,
    ) -> Result<Option<u64>, StoreError>;
    /// Store a new delivery; `false` (nothing written) if its place is taken, which
    /// happens when the sender recorded its first attempt before the publish got here.
    async fn insert_delivery(&self, delivery: &Delivery) -> Result<bool, StoreError>;
    /// May be a moment behind the latest change (every write to a delivery is
    /// conditioned on what it finds, so a stale read never causes a wrong write).
    async fn get_delivery(&self, key: DeliveryKey) -> Result<Option<Delivery>, StoreError>;
    /// Up to `limit` of history `number`'s live deliveries numbered `at_or_below` or
    /// lower, newest first (one read). Fewer than `limit` means there are no more.
    async fn history_newest(
        &self,
        number: u32,
        at_or_below: u64,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Page `page` (from 1) of `per_page` of the endpoint's deliveries, newest first, and
    /// the total. Reads only that page, whatever its number.
    async fn delivery_page(
        &self,
        endpoint: &Endpoint,
        page: u32,
        per_page: u32,
    ) -> Result<(Vec<Delivery>, u64), StoreError>;
    /// The delivery of event `event_id` in endpoint `number`'s history, looking upwards
    /// from `after + 1` and giving up at deliveries created after `created_before`
    /// (numbers are taken in about creation order, so the search is short).
    async fn find_event_delivery(
        &self,
        number: u32,
        after: u64,
        event_id: &str,
        created_before: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError>;
    /// Record an attempt if the stored delivery meets `expect` ([`Delivery::recorded`]);
    /// the delivery as recorded, or `None` (nothing written) if it does not. `seed` is
    /// the delivery as the job knows it: for a first attempt it is written whole if the
    /// delivery is not stored yet.
    async fn record_attempt(
        &self,
        seed: &Delivery,
        expect: Expect,
        attempt: &Attempt,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError>;
    /// Park a delivery until its endpoint is resumed ([`Delivery::parked`]) if it meets
    /// `expect`; `false` if it does not (nothing written).
    async fn hold(
        &self,
        seed: &Delivery,
        expect: Expect,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Open a manual retry request ([`Delivery::retry_requested`]); the delivery, or
    /// `None` if there is no such delivery (or, with [`RetryOf::Failed`], it is not
    /// `failed` any more).
    async fn request_retry(
        &self,
        key: DeliveryKey,
        request: Uuid,
        of: RetryOf,
    ) -> Result<Option<Delivery>, StoreError>;
    /// Up to `limit` held deliveries of an endpoint.
    async fn held_deliveries(&self, number: u32, limit: u32) -> Result<Vec<Delivery>, StoreError>;
    /// Release a held delivery ([`Delivery::resumed`]), given as last read. `false` if it
    /// is no longer held as read.
    async fn resume_delivery(
        &self,
        held: &Delivery,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Delete up to `limit` deliveries of an endpoint's history; how many were deleted.
    async fn purge_deliveries(&self, number: u32, limit: u32) -> Result<usize, StoreError>;
    /// Up to `limit` of endpoint `number`'s live `failed` deliveries created in
    /// [`since`, `until`), after `after`, in [`FailedPosition`] order (one read), and
    /// whether more may follow.
    async fn failed_deliveries(
        &self,
        number: u32,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        after: Option<FailedPosition>,
        limit: u32,
    ) -> Result<(Vec<Delivery>, bool), StoreError>;
    /// How many deliveries [`DeliveryStore::failed_deliveries`] would go through.
    async fn count_failed(
        &self,
        number: u32,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

/// Which deliveries a retry request may be opened on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOf {
    /// Any delivery (the retry route: "send it again", whatever its status).
    Any,
    /// Only a delivery that is `failed` when the request is written (a recovery: one
    /// that succeeded since it was listed is left alone).
    Failed,
}

/// Attempts per endpoint and UTC hour (the console's chart).
#[async_trait]
pub trait AttemptStats: Send + Sync {
    /// Add each organisation's and hour's counts (one write each).
    async fn add_attempt_counts(&self, counts: &[OrgHourCounts]) -> Result<(), StoreError>;
    /// Endpoint `number`'s (of `org`) counts for the hours from `first` to `last`,
    /// oldest first; an hour without attempts is absent.
    async fn attempt_counts(
        &self,
        org: &str,
        number: u32,
        first: DateTime<Utc>,
        last: DateTime<Utc>,
    ) -> Result<Vec<HourlyCount>, StoreError>;
}

/// Recovery jobs' records: what the recovery route started and how far it got.
#[async_trait]
pub trait RecoveryStore: Send + Sync {
    async fn insert_recovery(&self, recovery: &Recovery) -> Result<(), StoreError>;
    /// `None` for an unknown id or another organisation's.
    async fn get_recovery(&self, org: &str, id: Uuid) -> Result<Option<Recovery>, StoreError>;
    /// Store `next` if the stored recovery is still at `seen`'s position and running;
    /// `false` (nothing written) if another handling moved it meanwhile.
    async fn advance_recovery(&self, seen: &Recovery, next: &Recovery) -> Result<bool, StoreError>;
}

/// Automatic attempts due later than the queue can delay a message, by due minute.
#[async_trait]
pub trait Schedule: Send + Sync {
    async fn schedule(&self, attempt: &ScheduledAttempt) -> Result<(), StoreError>;
    /// Every attempt due in the minute starting at `minute`.
    async fn due_in_minute(
        &self,
        minute: DateTime<Utc>,
    ) -> Result<Vec<ScheduledAttempt>, StoreError>;
    /// The last minute the scheduler has handed to the queue, if any.
    async fn scheduled_through(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Move that mark from `seen` to `minute`; `false` if another scheduler moved it.
    async fn mark_scheduled_through(
        &self,
        seen: Option<DateTime<Utc>>,
        minute: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

/// The circuit breaker's counter on the endpoint, changed atomically.
#[async_trait]
pub trait EndpointHealth: Send + Sync {
    /// Add `failures` to the count; the new count, or `None` if the endpoint is gone.
    async fn record_failures(
        &self,
        org: &str,
        id: Uuid,
        failures: u32,
    ) -> Result<Option<u32>, StoreError>;
    /// Reset the count to zero, judged on the stored count as it is now (a read, then a
    /// write only when it is not zero already); the count it found (0 if the endpoint is
    /// gone).
    async fn record_success(&self, org: &str, id: Uuid) -> Result<u32, StoreError>;
    /// Set `is_active: false`, paused by `by`, if it is active (and, with
    /// `min_failures`, only if the count reached it). `true` if this call paused it.
    async fn pause_endpoint(
        &self,
        org: &str,
        id: Uuid,
        min_failures: Option<u32>,
        by: PausedBy,
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
