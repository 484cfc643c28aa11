//! How deliveries and their attempts are stored.

use super::error::StoreResult;
use crate::domain::OrgSlug;
use crate::domain::recovery::FailedPosition;
use crate::domain::{
    Attempt, AttemptOutcome, Delivery, DeliveryKey, DeliverySeq, Endpoint, EndpointNumber, Expect,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Deliveries, each in its endpoint's history at its sequence number.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Take the endpoint's next delivery sequence number; `None` if it no longer exists.
    async fn next_delivery_seq(
        &self,
        org: &OrgSlug,
        endpoint_id: Uuid,
    ) -> StoreResult<Option<DeliverySeq>>;
    /// Store a new delivery; `false` (nothing written) if its place is taken, which
    /// happens when the sender recorded its first attempt before the publish got here.
    async fn insert_delivery(&self, delivery: &Delivery) -> StoreResult<bool>;
    /// May be a moment behind the latest change (every write to a delivery is
    /// conditioned on what it finds, so a stale read never causes a wrong write).
    async fn get_delivery(&self, key: DeliveryKey) -> StoreResult<Option<Delivery>>;
    /// Up to `limit` of history `number`'s live deliveries numbered `at_or_below` or
    /// lower, newest first (one read). Fewer than `limit` means there are no more.
    async fn history_newest(
        &self,
        number: EndpointNumber,
        at_or_below: DeliverySeq,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>>;
    /// Page `page` (from 1) of `per_page` of the endpoint's deliveries, newest first, and
    /// the total. Reads only that page, whatever its number.
    async fn delivery_page(
        &self,
        endpoint: &Endpoint,
        page: u32,
        per_page: u32,
    ) -> StoreResult<(Vec<Delivery>, u64)>;
    /// The delivery of event `event_id` in endpoint `number`'s history, looking upwards
    /// from `after + 1` and giving up at deliveries created after `created_before`
    /// (numbers are taken in about creation order, so the search is short).
    async fn find_event_delivery(
        &self,
        number: EndpointNumber,
        after: DeliverySeq,
        event_id: &str,
        created_before: DateTime<Utc>,
    ) -> StoreResult<Option<Delivery>>;
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
    ) -> StoreResult<Option<Delivery>>;
    /// Hold a delivery until its endpoint is resumed ([`Delivery::on_hold`]) if it meets
    /// `expect`; `false` if it does not (nothing written).
    async fn hold(&self, seed: &Delivery, expect: Expect, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Open a manual retry request ([`Delivery::retry_requested`]); the delivery, or
    /// `None` if there is no such delivery (or, with [`RetryOf::Failed`], it is not
    /// `failed` any more).
    async fn request_retry(
        &self,
        key: DeliveryKey,
        request: Uuid,
        of: RetryOf,
    ) -> StoreResult<Option<Delivery>>;
    /// Up to `limit` held deliveries of an endpoint.
    async fn held_deliveries(
        &self,
        number: EndpointNumber,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>>;
    /// Release a held delivery ([`Delivery::resumed`]), given as last read. `false` if it
    /// is no longer held as read.
    async fn resume_delivery(&self, held: &Delivery, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Delete up to `limit` deliveries of an endpoint's history; how many were deleted.
    async fn purge_deliveries(&self, number: EndpointNumber, limit: u32) -> StoreResult<usize>;
    /// Up to `limit` of endpoint `number`'s live `failed` deliveries created in
    /// [`since`, `until`), after `after`, in [`FailedPosition`] order (one read), and
    /// whether more may follow.
    async fn failed_deliveries(
        &self,
        number: EndpointNumber,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        after: Option<FailedPosition>,
        limit: u32,
    ) -> StoreResult<(Vec<Delivery>, bool)>;
    /// How many deliveries [`DeliveryStore::failed_deliveries`] would go through,
    /// counting no further than `at_most` (reading stops there).
    async fn count_failed(
        &self,
        number: EndpointNumber,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        at_most: u64,
    ) -> StoreResult<u64>;
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
