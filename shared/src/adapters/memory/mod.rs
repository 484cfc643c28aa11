//! The embedded store: the local server's backend, held in process memory.
//!
//! It keeps the same rules as the DynamoDB adapter (limits, ordering, conditional
//! creates); the contract tests in `tests/` run against both. One file per port, named
//! as in `adapters/dynamo/`; beside them the local queue and the state file that
//! persists both across restarts.

mod deliveries;
mod endpoints;
mod events;
mod health;
mod keys;
pub mod queue;
mod recoveries;
mod schedule;
pub mod state_file;
mod stats;

use crate::domain::EndpointNumber;
use crate::domain::OrgSlug;
use crate::domain::recovery::Recovery;
use crate::domain::stats::{EndpointCounts, OrgHourCounts};
use crate::domain::time::minute_of;
use crate::domain::{
    ApiKey, Delivery, DeliveryKey, Endpoint, Event, KeyHash, Retention, ScheduledAttempt,
};
use crate::ports::{StoreError, StoreResult};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use uuid::Uuid;

#[derive(Default)]
struct State {
    /// (org, endpoint id) -> endpoint; ids are v7, so the map's order is creation order.
    endpoints: BTreeMap<(OrgSlug, Uuid), Endpoint>,
    /// The last endpoint number handed out.
    endpoint_numbers: u32,
    keys: BTreeMap<KeyHash, ApiKey>,
    events: BTreeMap<(OrgSlug, String), Event>,
    /// By (endpoint number, seq): each endpoint's history in order.
    deliveries: BTreeMap<DeliveryKey, Delivery>,
    /// By (due minute, delivery, attempt).
    schedule: BTreeMap<(DateTime<Utc>, DeliveryKey, u32), ScheduledAttempt>,
    scheduled_through: Option<DateTime<Utc>>,
    /// (organisation, hour) -> endpoint number -> counts.
    attempt_counts: BTreeMap<(OrgSlug, DateTime<Utc>), BTreeMap<EndpointNumber, EndpointCounts>>,
    recoveries: BTreeMap<Uuid, Recovery>,
}

impl State {
    fn endpoint_mut(&mut self, org: &OrgSlug, id: Uuid) -> Option<&mut Endpoint> {
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
    pub fn with_contents(contents: StoreContents) -> StoreResult<Self> {
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
