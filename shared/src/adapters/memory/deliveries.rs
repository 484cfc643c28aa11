//! Deliveries in the embedded store.

use super::MemoryStore;
use crate::domain::OrgSlug;
use crate::domain::delivery::{page_range, page_total};
use crate::domain::recovery::{FailedPosition, failed_position};
use crate::domain::{
    Attempt, AttemptOutcome, Delivery, DeliveryKey, DeliveryStatus, Endpoint, Expect,
};
use crate::domain::{DeliverySeq, EndpointNumber};
use crate::ports::{DeliveryStore, RetryOf, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

fn history(number: EndpointNumber) -> std::ops::RangeInclusive<DeliveryKey> {
    DeliveryKey {
        endpoint_number: number,
        seq: DeliverySeq::NONE,
    }..=DeliveryKey {
        endpoint_number: number,
        seq: DeliverySeq(u64::MAX),
    }
}

#[async_trait]
impl DeliveryStore for MemoryStore {
    async fn next_delivery_seq(
        &self,
        org: &OrgSlug,
        endpoint_id: Uuid,
    ) -> StoreResult<Option<DeliverySeq>> {
        Ok(self.state_mut().endpoint_mut(org, endpoint_id).map(|e| {
            e.delivery_seq = e.delivery_seq.next();
            e.delivery_seq
        }))
    }

    async fn insert_delivery(&self, delivery: &Delivery) -> StoreResult<bool> {
        let mut state = self.state_mut();
        if state.deliveries.contains_key(&delivery.key) {
            return Ok(false);
        }
        state.deliveries.insert(delivery.key, delivery.clone());
        Ok(true)
    }

    async fn get_delivery(&self, key: DeliveryKey) -> StoreResult<Option<Delivery>> {
        Ok(self
            .state()
            .deliveries
            .get(&key)
            .filter(|d| self.retention.is_live(d.created_at))
            .cloned())
    }

    async fn history_newest(
        &self,
        number: EndpointNumber,
        at_or_below: DeliverySeq,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        let state = self.state();
        let top = DeliveryKey {
            endpoint_number: number,
            seq: at_or_below,
        };
        Ok(state
            .deliveries
            .range(*history(number).start()..=top)
            .rev()
            .take(limit as usize)
            .map(|(_, d)| d)
            .filter(|d| self.retention.is_live(d.created_at))
            .cloned()
            .collect())
    }

    async fn delivery_page(
        &self,
        endpoint: &Endpoint,
        page: u32,
        per_page: u32,
    ) -> StoreResult<(Vec<Delivery>, u64)> {
        let state = self.state();
        // Expired deliveries are the oldest: the live history starts at the first live one.
        let bottom = state
            .deliveries
            .range(history(endpoint.number))
            .find(|(_, d)| self.retention.is_live(d.created_at))
            .map(|(k, _)| k.seq);
        let total = page_total(bottom, endpoint.delivery_seq);
        let items = match bottom.and_then(|b| page_range(b, endpoint.delivery_seq, page, per_page))
        {
            Some((lo, hi)) => state
                .deliveries
                .range(
                    DeliveryKey {
                        endpoint_number: endpoint.number,
                        seq: lo,
                    }..=DeliveryKey {
                        endpoint_number: endpoint.number,
                        seq: hi,
                    },
                )
                .rev()
                .map(|(_, d)| d)
                .filter(|d| self.retention.is_live(d.created_at))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        Ok((items, total))
    }

    async fn find_event_delivery(
        &self,
        number: EndpointNumber,
        after: DeliverySeq,
        event_id: &str,
        created_before: DateTime<Utc>,
    ) -> StoreResult<Option<Delivery>> {
        let state = self.state();
        Ok(state
            .deliveries
            .range(
                DeliveryKey {
                    endpoint_number: number,
                    seq: after.next(),
                }..=DeliveryKey {
                    endpoint_number: number,
                    seq: DeliverySeq(u64::MAX),
                },
            )
            .map(|(_, d)| d)
            .take_while(|d| d.created_at < created_before)
            .find(|d| d.event_id == event_id)
            .cloned())
    }

    async fn record_attempt(
        &self,
        seed: &Delivery,
        expect: Expect,
        attempt: &Attempt,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Delivery>> {
        let mut state = self.state_mut();
        let stored = match state.deliveries.get(&seed.key) {
            Some(d) => d.clone(),
            // Not written yet: only a first attempt may write it.
            None if expect == Expect::Attempt(1) => seed.clone(),
            None => return Ok(None),
        };
        if !stored.meets(expect) {
            return Ok(None);
        }
        let recorded = stored.recorded(attempt, outcome, expect, now);
        state.deliveries.insert(seed.key, recorded.clone());
        Ok(Some(recorded))
    }

    async fn hold(&self, seed: &Delivery, expect: Expect, now: DateTime<Utc>) -> StoreResult<bool> {
        let mut state = self.state_mut();
        let stored = match state.deliveries.get(&seed.key) {
            Some(d) => d.clone(),
            None if expect == Expect::Attempt(1) => seed.clone(),
            None => return Ok(false),
        };
        if !stored.meets(expect) {
            return Ok(false);
        }
        state.deliveries.insert(seed.key, stored.on_hold(now));
        Ok(true)
    }

    async fn request_retry(
        &self,
        key: DeliveryKey,
        request: Uuid,
        of: RetryOf,
    ) -> StoreResult<Option<Delivery>> {
        let mut state = self.state_mut();
        Ok(state
            .deliveries
            .get_mut(&key)
            .filter(|d| of == RetryOf::Any || d.status == DeliveryStatus::Failed)
            .map(|d| {
                *d = d.retry_requested(request);
                d.clone()
            }))
    }

    async fn held_deliveries(
        &self,
        number: EndpointNumber,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        Ok(self
            .state()
            .deliveries
            .range(history(number))
            .map(|(_, d)| d)
            .filter(|d| d.held)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn resume_delivery(&self, held: &Delivery, now: DateTime<Utc>) -> StoreResult<bool> {
        let mut state = self.state_mut();
        Ok(match state.deliveries.get_mut(&held.key) {
            Some(d) if d.held && d.status == held.status => {
                *d = d.resumed(now);
                true
            }
            _ => false,
        })
    }

    async fn purge_deliveries(&self, number: EndpointNumber, limit: u32) -> StoreResult<usize> {
        let mut state = self.state_mut();
        let keys: Vec<DeliveryKey> = state
            .deliveries
            .range(history(number))
            .take(limit as usize)
            .map(|(k, _)| *k)
            .collect();
        for key in &keys {
            state.deliveries.remove(key);
        }
        Ok(keys.len())
    }

    async fn failed_deliveries(
        &self,
        number: EndpointNumber,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        after: Option<FailedPosition>,
        limit: u32,
    ) -> StoreResult<(Vec<Delivery>, bool)> {
        let mut failed = self.failed_in(number, since, until);
        failed.retain(|d| after.is_none_or(|a| failed_position(d) > a));
        let more = failed.len() > limit as usize;
        failed.truncate(limit as usize);
        Ok((failed, more))
    }

    async fn count_failed(
        &self,
        number: EndpointNumber,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        at_most: u64,
    ) -> StoreResult<u64> {
        Ok((self.failed_in(number, since, until).len() as u64).min(at_most))
    }
}

impl MemoryStore {
    /// Endpoint `number`'s live failed deliveries created in [since, until), in
    /// [`FailedPosition`] order.
    fn failed_in(
        &self,
        number: EndpointNumber,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Vec<Delivery> {
        let mut failed: Vec<Delivery> = self
            .state()
            .deliveries
            .range(history(number))
            .map(|(_, d)| d)
            .filter(|d| d.status == DeliveryStatus::Failed && !d.held)
            .filter(|d| d.created_at >= since && d.created_at < until)
            .filter(|d| self.retention.is_live(d.created_at))
            .cloned()
            .collect();
        failed.sort_by_key(failed_position);
        failed
    }
}
