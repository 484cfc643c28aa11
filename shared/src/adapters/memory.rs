//! The embedded store: the local server's backend, held in process memory.
//!
//! It keeps the same rules as the DynamoDB adapter (limits, ordering, conditional
//! creates); the contract tests in `tests/` run against both.

use crate::domain::delivery::{page_range, page_total};
use crate::domain::{
    ApiKey, Attempt, AttemptOutcome, Delivery, Endpoint, EndpointChanges, Event, KeyHash, Lease,
    SigningSecret, Waiting,
};
use crate::ports::{
    ClaimFor, DeliveryStore, EndpointHealth, EndpointStore, EventStore, KeyStore, StoreError,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};
use uuid::Uuid;

#[derive(Default)]
struct State {
    /// (org, endpoint id) -> endpoint; ids are v7, so the map's order is creation order.
    endpoints: BTreeMap<(String, Uuid), Endpoint>,
    keys: BTreeMap<KeyHash, ApiKey>,
    events: BTreeMap<(String, String), Event>,
    deliveries: BTreeMap<Uuid, Delivery>,
    /// (delivery id, attempt number) -> attempt.
    attempts: BTreeMap<(Uuid, u32), Attempt>,
}

impl State {
    fn endpoint_mut(&mut self, org: &str, id: Uuid) -> Option<&mut Endpoint> {
        self.endpoints.get_mut(&(org.to_owned(), id))
    }
}

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A poisoned lock only means another request panicked mid-way; every mutation below
    /// is a single map operation, so the data is still consistent and we carry on.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn org_range(org: &str) -> std::ops::RangeInclusive<(String, Uuid)> {
    (org.to_owned(), Uuid::nil())..=(org.to_owned(), Uuid::max())
}

#[async_trait]
impl EndpointStore for MemoryStore {
    async fn insert_endpoint(&self, endpoint: &Endpoint, limit: usize) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.endpoints.range(org_range(&endpoint.org)).count() >= limit {
            return Err(StoreError::EndpointLimitReached { limit });
        }
        let key = (endpoint.org.clone(), endpoint.id);
        if state.endpoints.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        state.endpoints.insert(key, endpoint.clone());
        Ok(())
    }

    async fn list_endpoints(&self, org: &str) -> Result<Vec<Endpoint>, StoreError> {
        Ok(self
            .state()
            .endpoints
            .range(org_range(org))
            .rev()
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn get_endpoint(&self, org: &str, id: Uuid) -> Result<Option<Endpoint>, StoreError> {
        Ok(self.state().endpoints.get(&(org.to_owned(), id)).cloned())
    }

    async fn update_endpoint(
        &self,
        org: &str,
        id: Uuid,
        changes: &EndpointChanges,
        now: DateTime<Utc>,
    ) -> Result<Option<Endpoint>, StoreError> {
        let mut state = self.state();
        Ok(state.endpoints.get_mut(&(org.to_owned(), id)).map(|e| {
            changes.apply(e, now);
            e.clone()
        }))
    }

    async fn replace_secret(
        &self,
        org: &str,
        id: Uuid,
        secret: &SigningSecret,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        Ok(match state.endpoints.get_mut(&(org.to_owned(), id)) {
            Some(e) => {
                e.secret = secret.clone();
                e.updated_at = now;
                true
            }
            None => false,
        })
    }

    async fn delete_endpoint(&self, org: &str, id: Uuid) -> Result<bool, StoreError> {
        Ok(self
            .state()
            .endpoints
            .remove(&(org.to_owned(), id))
            .is_some())
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn insert_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.keys.contains_key(&key.hash) {
            return Err(StoreError::AlreadyExists);
        }
        state.keys.insert(key.hash.clone(), key.clone());
        Ok(())
    }

    async fn find_key(&self, hash: &KeyHash) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.state().keys.get(hash).cloned())
    }

    async fn delete_key(&self, hash: &KeyHash) -> Result<bool, StoreError> {
        Ok(self.state().keys.remove(hash).is_some())
    }

    async fn list_keys(&self, org: &str) -> Result<Vec<ApiKey>, StoreError> {
        let mut keys: Vec<ApiKey> = self
            .state()
            .keys
            .values()
            .filter(|k| k.org == org)
            .cloned()
            .collect();
        keys.sort_by_key(|k| k.id);
        Ok(keys)
    }
}

#[async_trait]
impl EndpointHealth for MemoryStore {
    async fn record_failure(&self, org: &str, id: Uuid) -> Result<Option<u32>, StoreError> {
        Ok(self.state().endpoint_mut(org, id).map(|e| {
            e.consecutive_failures = e.consecutive_failures.saturating_add(1);
            e.consecutive_failures
        }))
    }

    async fn record_success(&self, org: &str, id: Uuid) -> Result<(), StoreError> {
        if let Some(e) = self.state().endpoint_mut(org, id) {
            e.consecutive_failures = 0;
        }
        Ok(())
    }

    async fn pause_endpoint(
        &self,
        org: &str,
        id: Uuid,
        min_failures: Option<u32>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        Ok(match state.endpoint_mut(org, id) {
            Some(e) if e.is_active && min_failures.is_none_or(|m| e.consecutive_failures >= m) => {
                e.is_active = false;
                e.updated_at = now;
                true
            }
            _ => false,
        })
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn insert_event(&self, event: &Event) -> Result<(), StoreError> {
        let mut state = self.state();
        let key = (event.org.clone(), event.id.clone());
        if state.events.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        state.events.insert(key, event.clone());
        Ok(())
    }

    async fn get_event(&self, org: &str, id: &str) -> Result<Option<Event>, StoreError> {
        Ok(self
            .state()
            .events
            .get(&(org.to_owned(), id.to_owned()))
            .cloned())
    }

    async fn mark_fanned_out(&self, org: &str, id: &str) -> Result<(), StoreError> {
        if let Some(e) = self
            .state()
            .events
            .get_mut(&(org.to_owned(), id.to_owned()))
        {
            e.fanned_out = true;
        }
        Ok(())
    }

    async fn take_over_fan_out(
        &self,
        org: &str,
        id: &str,
        seen: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        Ok(
            match state.events.get_mut(&(org.to_owned(), id.to_owned())) {
                Some(e) if !e.fanned_out && e.fan_out_until == seen => {
                    e.fan_out_until = Some(until);
                    true
                }
                _ => false,
            },
        )
    }
}

fn lease_is_free(d: &Delivery, now: DateTime<Utc>) -> bool {
    d.lease.is_none_or(|l| l.until < now)
}

#[async_trait]
impl DeliveryStore for MemoryStore {
    async fn next_delivery_seq(
        &self,
        org: &str,
        endpoint_id: Uuid,
    ) -> Result<Option<u64>, StoreError> {
        Ok(self.state().endpoint_mut(org, endpoint_id).map(|e| {
            e.delivery_seq += 1;
            e.delivery_seq
        }))
    }

    async fn insert_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.deliveries.contains_key(&delivery.id) {
            return Err(StoreError::AlreadyExists);
        }
        state.deliveries.insert(delivery.id, delivery.clone());
        Ok(())
    }

    async fn get_delivery(&self, id: Uuid) -> Result<Option<Delivery>, StoreError> {
        Ok(self.state().deliveries.get(&id).cloned())
    }

    async fn list_attempts(&self, id: Uuid) -> Result<Vec<Attempt>, StoreError> {
        Ok(self
            .state()
            .attempts
            .range((id, 0)..=(id, u32::MAX))
            .map(|(_, a)| a.clone())
            .collect())
    }

    async fn delivery_page(
        &self,
        endpoint: &Endpoint,
        page: u32,
        per_page: u32,
    ) -> Result<(Vec<Delivery>, u64), StoreError> {
        let state = self.state();
        let mut of_endpoint: Vec<&Delivery> = state
            .deliveries
            .values()
            .filter(|d| d.endpoint_id == endpoint.id)
            .collect();
        of_endpoint.sort_by_key(|d| std::cmp::Reverse(d.seq));
        let bottom = of_endpoint.last().map(|d| d.seq);
        let total = page_total(bottom, endpoint.delivery_seq);
        let items = match bottom.and_then(|b| page_range(b, endpoint.delivery_seq, page, per_page))
        {
            Some((lo, hi)) => of_endpoint
                .into_iter()
                .filter(|d| (lo..=hi).contains(&d.seq))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        Ok((items, total))
    }

    async fn claim(
        &self,
        id: Uuid,
        claim: ClaimFor,
        lease: Lease,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError> {
        let mut state = self.state();
        let Some(d) = state.deliveries.get_mut(&id) else {
            return Ok(None);
        };
        let holds = lease_is_free(d, now)
            && match claim {
                ClaimFor::Attempt(n) => d.status.is_due() && d.attempt_count + 1 == n,
                ClaimFor::Manual(request) => d.manual_retry == Some(request),
            };
        if !holds {
            return Ok(None);
        }
        d.lease = Some(lease);
        Ok(Some(d.clone()))
    }

    async fn record_attempt(
        &self,
        claimed: &Delivery,
        lease: Uuid,
        attempt: &Attempt,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError> {
        let id = claimed.id;
        let mut state = self.state();
        let key = (id, attempt.attempt_number);
        if state.attempts.contains_key(&key) {
            return Ok(None);
        }
        let Some(d) = state
            .deliveries
            .get_mut(&id)
            .filter(|d| d.lease.is_some_and(|l| l.id == lease))
        else {
            return Ok(None);
        };
        *d = claimed.recorded(attempt, outcome, d.manual_retry, now);
        let recorded = d.clone();
        state.attempts.insert(key, attempt.clone());
        Ok(Some(recorded))
    }

    async fn hold(
        &self,
        claimed: &Delivery,
        lease: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        Ok(match state.deliveries.get_mut(&claimed.id) {
            Some(d) if d.lease.is_some_and(|l| l.id == lease) => {
                // A manual retry requested meanwhile stays open.
                let open = d.manual_retry;
                *d = claimed.parked(now);
                d.manual_retry = open;
                true
            }
            _ => false,
        })
    }

    async fn request_retry(
        &self,
        id: Uuid,
        request: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        Ok(match state.deliveries.get_mut(&id) {
            Some(d) => {
                *d = d.retry_requested(request, now);
                true
            }
            None => false,
        })
    }

    async fn paused_deliveries(
        &self,
        endpoint_id: Uuid,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        Ok(self
            .state()
            .deliveries
            .values()
            .filter(|d| d.endpoint_id == endpoint_id && d.held)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn resume_delivery(
        &self,
        held: &Delivery,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        Ok(match state.deliveries.get_mut(&held.id) {
            Some(d) if d.held && d.status == held.status => {
                *d = d.resumed(now);
                true
            }
            _ => false,
        })
    }

    async fn endpoint_delivery_ids(
        &self,
        endpoint_id: Uuid,
        limit: u32,
    ) -> Result<Vec<Uuid>, StoreError> {
        Ok(self
            .state()
            .deliveries
            .values()
            .filter(|d| d.endpoint_id == endpoint_id)
            .take(limit as usize)
            .map(|d| d.id)
            .collect())
    }

    async fn delete_deliveries(&self, ids: &[Uuid]) -> Result<(), StoreError> {
        let mut state = self.state();
        for id in ids {
            state.deliveries.remove(id);
            let attempts: Vec<(Uuid, u32)> = state
                .attempts
                .range((Bound::Included((*id, 0)), Bound::Included((*id, u32::MAX))))
                .map(|(k, _)| *k)
                .collect();
            for k in attempts {
                state.attempts.remove(&k);
            }
        }
        Ok(())
    }

    async fn due_deliveries(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let state = self.state();
        let mut due: Vec<&Delivery> = state
            .deliveries
            .values()
            .filter(|d| matches!(d.waiting(), Waiting::Due(at) if at <= before))
            .collect();
        due.sort_by_key(|d| (d.next_attempt_at, d.id));
        Ok(due.into_iter().take(limit as usize).cloned().collect())
    }

    async fn touch_due(
        &self,
        id: Uuid,
        seen: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(match self.state().deliveries.get_mut(&id) {
            Some(d) if d.waiting() == Waiting::Due(seen) => {
                d.next_attempt_at = Some(at);
                true
            }
            _ => false,
        })
    }
}
