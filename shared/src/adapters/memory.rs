//! The embedded store: the local server's backend, held in process memory.
//!
//! It keeps the same rules as the DynamoDB adapter (limits, ordering, conditional
//! creates); the contract tests in `tests/` run against both.

use crate::domain::delivery::{page_range, page_total};
use crate::domain::now;
use crate::domain::recovery::{FailedPosition, Recovery, RecoveryStatus, failed_position};
use crate::domain::stats::{EndpointCounts, HourlyCount, OrgHourCounts, STATS_KEPT_DAYS, hour_of};
use crate::domain::time::minute_of;
use crate::domain::{
    ApiKey, Attempt, AttemptOutcome, Delivery, DeliveryKey, DeliveryStatus, Endpoint,
    EndpointChanges, Event, Expect, KeyHash, PausedBy, Retention, ScheduledAttempt, SigningSecret,
};
use crate::ports::{
    AttemptStats, DeliveryStore, EndpointHealth, EndpointStore, EventStore, KeyStore,
    RecoveryStore, RetryOf, Schedule, StoreError,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use uuid::Uuid;

#[derive(Default)]
struct State {
    /// (org, endpoint id) -> endpoint; ids are v7, so the map's order is creation order.
    endpoints: BTreeMap<(String, Uuid), Endpoint>,
    /// The last endpoint number handed out.
    endpoint_numbers: u32,
    keys: BTreeMap<KeyHash, ApiKey>,
    events: BTreeMap<(String, String), Event>,
    /// By (endpoint number, seq): each endpoint's history in order.
    deliveries: BTreeMap<DeliveryKey, Delivery>,
    /// By (due minute, delivery, attempt).
    schedule: BTreeMap<(DateTime<Utc>, DeliveryKey, u32), ScheduledAttempt>,
    scheduled_through: Option<DateTime<Utc>>,
    /// (organisation, hour) -> endpoint number -> counts.
    attempt_counts: BTreeMap<(String, DateTime<Utc>), BTreeMap<u32, EndpointCounts>>,
    recoveries: BTreeMap<Uuid, Recovery>,
}

impl State {
    fn endpoint_mut(&mut self, org: &str, id: Uuid) -> Option<&mut Endpoint> {
        self.endpoints.get_mut(&(org.to_owned(), id))
    }
}

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    /// Counts the calls that may have changed the state, so a saver knows when to save.
    changes: AtomicU64,
    /// Expired events and deliveries are kept but never shown, as in DynamoDB before
    /// its TTL deletes them.
    retention: Retention,
}

/// Everything the store holds, as plain values: what `--state FILE` saves and loads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreContents {
    pub endpoints: Vec<Endpoint>,
    pub endpoint_numbers: u32,
    pub keys: Vec<ApiKey>,
    pub events: Vec<Event>,
    pub deliveries: Vec<Delivery>,
    pub schedule: Vec<ScheduledAttempt>,
    pub scheduled_through: Option<DateTime<Utc>>,
    pub attempt_counts: Vec<OrgHourCounts>,
    pub recoveries: Vec<Recovery>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `contents`.
    pub fn with_contents(contents: StoreContents) -> Result<Self, StoreError> {
        let mut state = State {
            endpoint_numbers: contents.endpoint_numbers,
            scheduled_through: contents.scheduled_through,
            ..State::default()
        };
        for e in contents.endpoints {
            state.endpoints.insert((e.org.clone(), e.id), e);
        }
        for k in contents.keys {
            state.keys.insert(k.hash.clone(), k);
        }
        for e in contents.events {
            state.events.insert((e.org.clone(), e.id.clone()), e);
        }
        for d in contents.deliveries {
            state.deliveries.insert(d.key, d);
        }
        for c in contents.attempt_counts {
            state.attempt_counts.insert((c.org, c.hour), c.endpoints);
        }
        for r in contents.recoveries {
            state.recoveries.insert(r.id, r);
        }
        for a in contents.schedule {
            let key = DeliveryKey::from_id(a.job.delivery_id)
                .ok_or_else(|| StoreError::Backend("scheduled attempt of an unknown id".into()))?;
            state.schedule.insert((minute_of(a.at), key, a.attempt), a);
        }
        Ok(Self {
            state: Mutex::new(state),
            changes: AtomicU64::new(0),
            retention: Retention::default(),
        })
    }

    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// A copy of everything held, taken at one instant.
    pub fn contents(&self) -> StoreContents {
        let state = self.state();
        StoreContents {
            endpoints: state.endpoints.values().cloned().collect(),
            endpoint_numbers: state.endpoint_numbers,
            keys: state.keys.values().cloned().collect(),
            events: state.events.values().cloned().collect(),
            deliveries: state.deliveries.values().cloned().collect(),
            schedule: state.schedule.values().cloned().collect(),
            scheduled_through: state.scheduled_through,
            attempt_counts: state
                .attempt_counts
                .iter()
                .map(|((org, hour), endpoints)| OrgHourCounts {
                    org: org.clone(),
                    hour: *hour,
                    endpoints: endpoints.clone(),
                })
                .collect(),
            recoveries: state.recoveries.values().cloned().collect(),
        }
    }

    /// How many calls that may change the store have been made: when it moves, there
    /// may be something new to save.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// The state, for a call that may change it.
    fn state_mut(&self) -> MutexGuard<'_, State> {
        let state = self.state();
        self.changes.fetch_add(1, Ordering::AcqRel);
        state
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
    async fn allocate_endpoint_number(&self) -> Result<u32, StoreError> {
        let mut state = self.state_mut();
        state.endpoint_numbers = state
            .endpoint_numbers
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("endpoint numbers exhausted".into()))?;
        Ok(state.endpoint_numbers)
    }

    async fn insert_endpoint(&self, endpoint: &Endpoint, limit: usize) -> Result<(), StoreError> {
        let mut state = self.state_mut();
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

    async fn peek_endpoint(&self, org: &str, id: Uuid) -> Result<Option<Endpoint>, StoreError> {
        self.get_endpoint(org, id).await
    }

    async fn update_endpoint(
        &self,
        org: &str,
        id: Uuid,
        changes: &EndpointChanges,
        now: DateTime<Utc>,
    ) -> Result<Option<Endpoint>, StoreError> {
        let mut state = self.state_mut();
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
        let mut state = self.state_mut();
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
            .state_mut()
            .endpoints
            .remove(&(org.to_owned(), id))
            .is_some())
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn insert_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let mut state = self.state_mut();
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
        Ok(self.state_mut().keys.remove(hash).is_some())
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

    async fn record_key_use(&self, hash: &KeyHash, at: DateTime<Utc>) -> Result<(), StoreError> {
        if let Some(k) = self.state_mut().keys.get_mut(hash) {
            k.last_used_at = Some(at);
        }
        Ok(())
    }
}

#[async_trait]
impl EndpointHealth for MemoryStore {
    async fn record_failures(
        &self,
        org: &str,
        id: Uuid,
        failures: u32,
    ) -> Result<Option<u32>, StoreError> {
        Ok(self.state_mut().endpoint_mut(org, id).map(|e| {
            e.consecutive_failures = e.consecutive_failures.saturating_add(failures);
            e.consecutive_failures
        }))
    }

    async fn record_success(&self, org: &str, id: Uuid) -> Result<u32, StoreError> {
        Ok(self
            .state_mut()
            .endpoint_mut(org, id)
            .map_or(0, |e| std::mem::take(&mut e.consecutive_failures)))
    }

    async fn pause_endpoint(
        &self,
        org: &str,
        id: Uuid,
        min_failures: Option<u32>,
        by: PausedBy,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state_mut();
        Ok(match state.endpoint_mut(org, id) {
            Some(e) if e.is_active && min_failures.is_none_or(|m| e.consecutive_failures >= m) => {
                e.is_active = false;
                e.paused_by = Some(by);
                e.updated_at = now;
                true
            }
            _ => false,
        })
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn insert_event(&self, event: &Event) -> Result<Option<Event>, StoreError> {
        let mut state = self.state_mut();
        let key = (event.org.clone(), event.id.clone());
        // An expired event is replaced: its id is free again.
        if let Some(existing) = state
            .events
            .get(&key)
            .filter(|e| self.retention.is_live(e.created_at))
        {
            return Ok(Some(existing.clone()));
        }
        state.events.insert(key, event.clone());
        Ok(None)
    }

    async fn get_event(&self, org: &str, id: &str) -> Result<Option<Event>, StoreError> {
        Ok(self
            .state()
            .events
            .get(&(org.to_owned(), id.to_owned()))
            .filter(|e| self.retention.is_live(e.created_at))
            .cloned())
    }

    async fn take_over_fan_out(
        &self,
        org: &str,
        id: &str,
        seen: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state_mut();
        Ok(
            match state.events.get_mut(&(org.to_owned(), id.to_owned())) {
                Some(e) if e.fan_out_until == seen => {
                    e.fan_out_until = Some(until);
                    true
                }
                _ => false,
            },
        )
    }
}

fn history(number: u32) -> std::ops::RangeInclusive<DeliveryKey> {
    DeliveryKey {
        endpoint_number: number,
        seq: 0,
    }..=DeliveryKey {
        endpoint_number: number,
        seq: u64::MAX,
    }
}

#[async_trait]
impl DeliveryStore for MemoryStore {
    async fn next_delivery_seq(
        &self,
        org: &str,
        endpoint_id: Uuid,
    ) -> Result<Option<u64>, StoreError> {
        Ok(self.state_mut().endpoint_mut(org, endpoint_id).map(|e| {
            e.delivery_seq += 1;
            e.delivery_seq
        }))
    }

    async fn insert_delivery(&self, delivery: &Delivery) -> Result<bool, StoreError> {
        let mut state = self.state_mut();
        if state.deliveries.contains_key(&delivery.key) {
            return Ok(false);
        }
        state.deliveries.insert(delivery.key, delivery.clone());
        Ok(true)
    }

    async fn get_delivery(&self, key: DeliveryKey) -> Result<Option<Delivery>, StoreError> {
        Ok(self
            .state()
            .deliveries
            .get(&key)
            .filter(|d| self.retention.is_live(d.created_at))
            .cloned())
    }

    async fn history_newest(
        &self,
        number: u32,
        at_or_below: u64,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
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
    ) -> Result<(Vec<Delivery>, u64), StoreError> {
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
        number: u32,
        after: u64,
        event_id: &str,
        created_before: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError> {
        let state = self.state();
        Ok(state
            .deliveries
            .range(
                DeliveryKey {
                    endpoint_number: number,
                    seq: after.saturating_add(1),
                }..=DeliveryKey {
                    endpoint_number: number,
                    seq: u64::MAX,
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
    ) -> Result<Option<Delivery>, StoreError> {
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

    async fn hold(
        &self,
        seed: &Delivery,
        expect: Expect,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state_mut();
        let stored = match state.deliveries.get(&seed.key) {
            Some(d) => d.clone(),
            None if expect == Expect::Attempt(1) => seed.clone(),
            None => return Ok(false),
        };
        if !stored.meets(expect) {
            return Ok(false);
        }
        state.deliveries.insert(seed.key, stored.parked(now));
        Ok(true)
    }

    async fn request_retry(
        &self,
        key: DeliveryKey,
        request: Uuid,
        of: RetryOf,
    ) -> Result<Option<Delivery>, StoreError> {
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

    async fn held_deliveries(&self, number: u32, limit: u32) -> Result<Vec<Delivery>, StoreError> {
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

    async fn resume_delivery(
        &self,
        held: &Delivery,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state_mut();
        Ok(match state.deliveries.get_mut(&held.key) {
            Some(d) if d.held && d.status == held.status => {
                *d = d.resumed(now);
                true
            }
            _ => false,
        })
    }

    async fn purge_deliveries(&self, number: u32, limit: u32) -> Result<usize, StoreError> {
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
        number: u32,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        after: Option<FailedPosition>,
        limit: u32,
    ) -> Result<(Vec<Delivery>, bool), StoreError> {
        let mut failed = self.failed_in(number, since, until);
        failed.retain(|d| after.is_none_or(|a| failed_position(d) > a));
        let more = failed.len() > limit as usize;
        failed.truncate(limit as usize);
        Ok((failed, more))
    }

    async fn count_failed(
        &self,
        number: u32,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(self.failed_in(number, since, until).len() as u64)
    }
}

impl MemoryStore {
    /// Endpoint `number`'s live failed deliveries created in [since, until), in
    /// [`FailedPosition`] order.
    fn failed_in(&self, number: u32, since: DateTime<Utc>, until: DateTime<Utc>) -> Vec<Delivery> {
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

#[async_trait]
impl AttemptStats for MemoryStore {
    async fn add_attempt_counts(&self, counts: &[OrgHourCounts]) -> Result<(), StoreError> {
        let mut state = self.state_mut();
        // Kept as long as in DynamoDB, so a long-running local store does not grow.
        let kept_from = hour_of(now()) - chrono::Duration::days(STATS_KEPT_DAYS);
        state
            .attempt_counts
            .retain(|(_, hour), _| *hour >= kept_from);
        for c in counts {
            let hour = state
                .attempt_counts
                .entry((c.org.clone(), c.hour))
                .or_default();
            for (number, add) in &c.endpoints {
                let counts = hour.entry(*number).or_default();
                counts.succeeded += add.succeeded;
                counts.failed += add.failed;
            }
        }
        Ok(())
    }

    async fn attempt_counts(
        &self,
        org: &str,
        number: u32,
        first: DateTime<Utc>,
        last: DateTime<Utc>,
    ) -> Result<Vec<HourlyCount>, StoreError> {
        Ok(self
            .state()
            .attempt_counts
            .range((org.to_owned(), first)..=(org.to_owned(), last))
            .filter_map(|((_, hour), endpoints)| {
                endpoints.get(&number).map(|c| HourlyCount {
                    hour: *hour,
                    succeeded: c.succeeded,
                    failed: c.failed,
                })
            })
            .collect())
    }
}

#[async_trait]
impl RecoveryStore for MemoryStore {
    async fn insert_recovery(&self, recovery: &Recovery) -> Result<(), StoreError> {
        self.state_mut()
            .recoveries
            .insert(recovery.id, recovery.clone());
        Ok(())
    }

    async fn get_recovery(&self, org: &str, id: Uuid) -> Result<Option<Recovery>, StoreError> {
        Ok(self
            .state()
            .recoveries
            .get(&id)
            .filter(|r| r.org == org)
            .cloned())
    }

    async fn advance_recovery(&self, seen: &Recovery, next: &Recovery) -> Result<bool, StoreError> {
        let mut state = self.state_mut();
        match state.recoveries.get_mut(&seen.id) {
            Some(stored)
                if stored.position == seen.position && stored.status == RecoveryStatus::Running =>
            {
                *stored = next.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl Schedule for MemoryStore {
    async fn schedule(&self, attempt: &ScheduledAttempt) -> Result<(), StoreError> {
        let key = DeliveryKey::from_id(attempt.job.delivery_id)
            .ok_or_else(|| StoreError::Backend("scheduled attempt of an unknown id".into()))?;
        self.state_mut().schedule.insert(
            (minute_of(attempt.at), key, attempt.attempt),
            attempt.clone(),
        );
        Ok(())
    }

    async fn due_in_minute(
        &self,
        minute: DateTime<Utc>,
    ) -> Result<Vec<ScheduledAttempt>, StoreError> {
        let minute = minute_of(minute);
        let low = (
            minute,
            DeliveryKey {
                endpoint_number: 0,
                seq: 0,
            },
            0,
        );
        let high = (
            minute,
            DeliveryKey {
                endpoint_number: u32::MAX,
                seq: u64::MAX,
            },
            u32::MAX,
        );
        Ok(self
            .state()
            .schedule
            .range(low..=high)
            .map(|(_, a)| a.clone())
            .collect())
    }

    async fn scheduled_through(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.state().scheduled_through)
    }

    async fn mark_scheduled_through(
        &self,
        seen: Option<DateTime<Utc>>,
        minute: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state_mut();
        if state.scheduled_through != seen {
            return Ok(false);
        }
        state.scheduled_through = Some(minute);
        Ok(true)
    }
}
