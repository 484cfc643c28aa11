//! What the jobs of one batch share, so a batch of jobs for one endpoint costs about what
//! one job costs: one read of the endpoint, and circuit-breaker updates applied together.
//!
//! The jobs of a batch run concurrently, so their reads of an endpoint would all happen
//! at the batch's start anyway: one read serves them all, and is no older than theirs
//! would be. Breaker updates are applied in the order the attempts finished, one
//! application at a time per endpoint. An outcome waits up to [`GATHER`] for the batch's
//! other attempts to the endpoint that are still in flight, and the outcomes that pile
//! up meanwhile are applied together: a run of outcomes comes to "reset if it holds a
//! success (pausing first if the failures before it reached the threshold), then add
//! the failures after its last success", which leaves what applying them one by one
//! would. A success thus resets the count shortly after its attempt was recorded
//! (normally within [`GATHER`]), and a failure counted before that moment is cleared by
//! it, one counted after is kept: the same rule as for one attempt at a time, with the
//! moment a little later.
//!
//! A run whose reset fails is put back for the next outcome's turn to apply (repeating a
//! reset only moves it later). One whose addition or pause fails is given up, as one
//! attempt's would be: the addition may have been made, and adding twice would count
//! failures that did not happen.

use crate::domain::OrgSlug;
use crate::domain::retry::breaker_trips;
use crate::domain::stats::HourlyTally;
use crate::domain::{Endpoint, Pause, PausedBy, now};
use crate::metrics::{PauseReason, SenderTally};
use crate::ports::{EndpointHealth, EndpointStore, StoreError, StoreResult};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{OnceCell, watch};
use uuid::Uuid;

/// How long an outcome waits for the batch's other attempts to the same endpoint
/// before it is applied without them (a reply slower than this is rare, and the wait
/// postpones the breaker update and the batch's end by as much).
pub const GATHER: Duration = Duration::from_millis(100);

type EndpointKey = (OrgSlug, Uuid);

#[derive(Default)]
pub struct Batch {
    endpoints: Mutex<HashMap<EndpointKey, Arc<OnceCell<Option<Endpoint>>>>>,
    breakers: Mutex<HashMap<EndpointKey, Arc<Breaker>>>,
    /// What the batch's jobs did, for its metrics.
    pub tally: SenderTally,
    /// The batch's attempts per endpoint and hour, for the console's statistics.
    pub hourly: HourlyTally,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded maps stay consistent whatever panicked while holding them.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Batch {
    /// The endpoint as read (eventually consistent) once for the batch.
    pub async fn endpoint(
        &self,
        store: &dyn EndpointStore,
        org: &OrgSlug,
        id: Uuid,
    ) -> StoreResult<Option<Endpoint>> {
        let cell = locked(&self.endpoints)
            .entry((org.to_owned(), id))
            .or_default()
            .clone();
        cell.get_or_try_init(|| store.peek_endpoint(org, id))
            .await
            .cloned()
    }

    /// This batch paused the endpoint: its jobs that have not posted yet see it paused.
    pub fn paused(&self, endpoint: &Endpoint) {
        let paused = Endpoint {
            is_active: false,
            paused_by: Some(PausedBy::CircuitBreaker),
            ..endpoint.clone()
        };
        locked(&self.endpoints).insert(
            (endpoint.org.clone(), endpoint.id),
            Arc::new(OnceCell::new_with(Some(Some(paused)))),
        );
    }

    /// An attempt to `endpoint` is about to be made: its outcome is to be counted with
    /// [`Batch::count_outcome`] (dropping the returned guard instead says it has none).
    pub fn posting(&self, endpoint: &Endpoint) -> Posting {
        let breaker = locked(&self.breakers)
            .entry((endpoint.org.clone(), endpoint.id))
            .or_default()
            .clone();
        breaker.in_flight.send_modify(|n| *n += 1);
        Posting { breaker }
    }

    /// Count an attempt's outcome in the endpoint's circuit breaker: a success resets
    /// the count, a failure adds one and pauses the endpoint once the count reaches
    /// `threshold`. Returns once this outcome is applied; `true` if applying it paused
    /// the endpoint.
    pub async fn count_outcome(
        &self,
        health: &dyn EndpointHealth,
        posting: Posting,
        endpoint: &Endpoint,
        succeeded: bool,
        threshold: u32,
    ) -> StoreResult<bool> {
        let breaker = posting.breaker.clone();
        let seq = breaker.push(succeeded);
        drop(posting);
        let mut settled = breaker.in_flight.subscribe();
        // Elapsed: the stragglers' outcomes are applied in a later run.
        let _ = tokio::time::timeout(GATHER, settled.wait_for(|&n| n == 0)).await;
        let _turn = breaker.applying.lock().await;
        let Some(run) = breaker.take_unless_applied(seq) else {
            return Ok(false);
        };
        match apply(health, endpoint, &run.outcomes, threshold).await {
            Ok(paused) => {
                locked(&breaker.pending).applied_below = run.below;
                if paused {
                    self.paused(endpoint);
                    self.tally.paused(PauseReason::Breaker);
                }
                Ok(paused)
            }
            Err(RunError::BeforeAnyChange(err)) => {
                breaker.put_back(run.outcomes);
                Err(err)
            }
            Err(RunError::Partly(err)) => {
                locked(&breaker.pending).applied_below = run.below;
                Err(err)
            }
        }
    }

    /// Whether this batch paused the endpoint (no read: what the batch knows).
    pub fn has_paused(&self, endpoint: &Endpoint) -> bool {
        locked(&self.endpoints)
            .get(&(endpoint.org.clone(), endpoint.id))
            .and_then(|cell| cell.get())
            .is_some_and(|seen| seen.as_ref().is_some_and(|e| !e.is_active))
    }
}

/// An attempt in flight (see [`Batch::posting`]).
pub struct Posting {
    breaker: Arc<Breaker>,
}

impl Drop for Posting {
    fn drop(&mut self) {
        self.breaker
            .in_flight
            .send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// One endpoint's attempts in flight, and outcomes waiting to be applied in the order
/// their attempts finished.
struct Breaker {
    in_flight: watch::Sender<u32>,
    pending: Mutex<Pending>,
    applying: tokio::sync::Mutex<()>,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            in_flight: watch::channel(0).0,
            pending: Mutex::default(),
            applying: tokio::sync::Mutex::default(),
        }
    }
}

#[derive(Default)]
struct Pending {
    /// `true` for a success; the outcome numbered `applied_below` first.
    outcomes: VecDeque<bool>,
    next: u64,
    /// Every outcome numbered below this one is applied.
    applied_below: u64,
}

struct Run {
    outcomes: Vec<bool>,
    below: u64,
}

impl Breaker {
    fn push(&self, succeeded: bool) -> u64 {
        let mut pending = locked(&self.pending);
        pending.outcomes.push_back(succeeded);
        pending.next += 1;
        pending.next - 1
    }

    /// Every pending outcome, unless outcome `seq` was applied with an earlier run.
    fn take_unless_applied(&self, seq: u64) -> Option<Run> {
        let mut pending = locked(&self.pending);
        (seq >= pending.applied_below).then(|| Run {
            outcomes: pending.outcomes.drain(..).collect(),
            below: pending.next,
        })
    }

    /// A run whose application failed goes back in front, for the next turn to apply.
    fn put_back(&self, run: Vec<bool>) {
        let mut pending = locked(&self.pending);
        for succeeded in run.into_iter().rev() {
            pending.outcomes.push_front(succeeded);
        }
    }
}

/// How applying a run failed.
enum RunError {
    /// Nothing was changed: the run can be applied again.
    BeforeAnyChange(StoreError),
    /// The addition or the pause failed, and may have been made all the same (any reset
    /// before it was).
    Partly(StoreError),
}

async fn apply(
    health: &dyn EndpointHealth,
    endpoint: &Endpoint,
    outcomes: &[bool],
    threshold: u32,
) -> Result<bool, RunError> {
    let (org, id) = (&endpoint.org, endpoint.id);
    let last_success = outcomes.iter().rposition(|&succeeded| succeeded);
    let (mut tripped_before, mut tripped_after) = (false, false);
    if let Some(last) = last_success {
        let found = health
            .record_success(org, id)
            .await
            .map_err(RunError::BeforeAnyChange)?;
        // The count the outcomes before the last success would have taken one by one:
        // had it reached the threshold, the endpoint would have been paused on the way.
        let mut count = found;
        for &succeeded in &outcomes[..last] {
            count = if succeeded {
                0
            } else {
                count.saturating_add(1)
            };
            tripped_before |= breaker_trips(count, threshold);
        }
    }
    let failures = outcomes.len() - last_success.map_or(0, |i| i + 1);
    if let Ok(failures @ 1..) = u32::try_from(failures) {
        let count = health
            .record_failures(org, id, failures)
            .await
            .map_err(RunError::Partly)?;
        tripped_after = count.is_some_and(|c| breaker_trips(c, threshold));
    }
    if !(tripped_before || tripped_after) {
        return Ok(false);
    }
    // Reached before the last success, the count is below the threshold again: that
    // pause is unconditional, as it would have been when the count reached it.
    let min_failures = (!tripped_before).then_some(threshold);
    let paused = health
        .pause_endpoint(
            org,
            id,
            Pause {
                by: PausedBy::CircuitBreaker,
                at: now(),
                min_failures,
            },
        )
        .await
        .map_err(RunError::Partly)?;
    if paused {
        tracing::warn!(org = org.as_str(), endpoint_id = %id, threshold, "circuit breaker tripped: endpoint paused");
    }
    Ok(paused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryStore;
    use crate::domain::EndpointNumber;
    use crate::domain::NewEndpoint;
    use crate::domain::org::acme;
    use async_trait::async_trait;
    use chrono::Utc;
    use futures_util::future::join_all;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// The real embedded store, made to take a moment per breaker request (so outcomes
    /// pile up while one is applied) and to count them; it can refuse the first `fail`
    /// requests, as a throttled table would.
    struct SlowHealth {
        store: MemoryStore,
        requests: AtomicU32,
        fail: AtomicU32,
    }

    impl SlowHealth {
        async fn turn(&self) -> StoreResult<()> {
            tokio::task::yield_now().await;
            self.requests.fetch_add(1, Ordering::SeqCst);
            let refused = self
                .fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if refused {
                return Err(StoreError::Backend("throttled".into()));
            }
            Ok(())
        }
    }

    #[async_trait]
    impl EndpointHealth for SlowHealth {
        async fn record_failures(
            &self,
            org: &OrgSlug,
            id: Uuid,
            failures: u32,
        ) -> StoreResult<Option<u32>> {
            self.turn().await?;
            self.store.record_failures(org, id, failures).await
        }
        async fn record_success(&self, org: &OrgSlug, id: Uuid) -> StoreResult<u32> {
            self.turn().await?;
            self.store.record_success(org, id).await
        }
        async fn pause_endpoint(&self, org: &OrgSlug, id: Uuid, pause: Pause) -> StoreResult<bool> {
            self.store.pause_endpoint(org, id, pause).await
        }
    }

    async fn health_with_endpoint(failures: u32) -> (SlowHealth, Endpoint) {
        let store = MemoryStore::new();
        let new = NewEndpoint {
            url: "https://example.com/hook".into(),
            description: String::new(),
            event_types: vec!["a.b".into()],
        };
        let endpoint = Endpoint::create(&acme(), new, EndpointNumber(1), Utc::now());
        store.insert_endpoint(&endpoint, 100).await.expect("insert");
        if failures > 0 {
            store
                .record_failures(&acme(), endpoint.id, failures)
                .await
                .expect("seed the count");
        }
        let health = SlowHealth {
            store,
            requests: AtomicU32::new(0),
            fail: AtomicU32::new(0),
        };
        (health, endpoint)
    }

    async fn count(health: &SlowHealth, endpoint: &Endpoint) -> (u32, bool) {
        let e = health
            .store
            .get_endpoint(&acme(), endpoint.id)
            .await
            .expect("get")
            .expect("there");
        (e.consecutive_failures, e.is_active)
    }

    /// Outcomes counted concurrently, in this order of finishing.
    async fn count_all(
        batch: &Batch,
        health: &SlowHealth,
        endpoint: &Endpoint,
        outcomes: &[bool],
        threshold: u32,
    ) -> Vec<StoreResult<bool>> {
        join_all(outcomes.iter().map(|&ok| {
            batch.count_outcome(health, batch.posting(endpoint), endpoint, ok, threshold)
        }))
        .await
    }

    #[tokio::test]
    async fn outcomes_applied_together_leave_what_one_by_one_would() {
        // Success, failure, failure, success, failure, failure: a reset, then two.
        let (health, endpoint) = health_with_endpoint(5).await;
        let batch = Batch::default();
        let outcomes = [true, false, false, true, false, false];
        let results = count_all(&batch, &health, &endpoint, &outcomes, 20).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(count(&health, &endpoint).await, (2, true));
        let requests = health.requests.load(Ordering::SeqCst);
        assert_eq!(
            requests, 2,
            "six outcomes finishing together: one reset and one addition"
        );

        // A run ending in a success leaves zero, whatever came before it.
        let outcomes = [false, false, true];
        count_all(&batch, &health, &endpoint, &outcomes, 20).await;
        assert_eq!(count(&health, &endpoint).await, (0, true));
    }

    #[tokio::test]
    async fn a_run_that_crosses_the_threshold_pauses_the_endpoint_for_the_batch() {
        let (health, endpoint) = health_with_endpoint(1).await;
        let batch = Batch::default();
        let results = count_all(&batch, &health, &endpoint, &[false; 4], 3).await;
        assert!(results.iter().any(|r| matches!(r, Ok(true))), "{results:?}");
        assert_eq!(count(&health, &endpoint).await, (5, false));
        // The batch's later jobs see it paused without reading it again.
        let seen = batch
            .endpoint(&MemoryStore::new(), &acme(), endpoint.id)
            .await
            .expect("read")
            .expect("known to the batch");
        assert!(!seen.is_active);
    }

    #[tokio::test]
    async fn failures_before_a_success_that_reach_the_threshold_pause() {
        // One by one: 3 → 4 → 5 (paused) → 0.
        let (health, endpoint) = health_with_endpoint(3).await;
        let batch = Batch::default();
        let results = count_all(&batch, &health, &endpoint, &[false, false, true], 5).await;
        assert!(results.iter().any(|r| matches!(r, Ok(true))), "{results:?}");
        assert_eq!(count(&health, &endpoint).await, (0, false));
    }

    #[tokio::test]
    async fn a_run_whose_reset_failed_is_applied_by_the_next_turn() {
        let (health, endpoint) = health_with_endpoint(4).await;
        health.fail.store(1, Ordering::SeqCst);
        let batch = Batch::default();
        let results = count_all(&batch, &health, &endpoint, &[true, false, false], 20).await;
        assert_eq!(
            results.iter().filter(|r| r.is_err()).count(),
            1,
            "one turn's reset was refused: {results:?}"
        );
        assert_eq!(
            count(&health, &endpoint).await,
            (2, true),
            "reset, then both failures, once"
        );
    }

    #[tokio::test]
    async fn a_failed_addition_is_not_repeated() {
        // It may have been made: adding again could count failures twice.
        let (health, endpoint) = health_with_endpoint(0).await;
        health.fail.store(1, Ordering::SeqCst);
        let batch = Batch::default();
        let results = count_all(&batch, &health, &endpoint, &[false, false], 20).await;
        assert_eq!(
            results.iter().filter(|r| r.is_err()).count(),
            1,
            "{results:?}"
        );
        assert_eq!(health.requests.load(Ordering::SeqCst), 1, "not tried again");
    }

    #[tokio::test]
    async fn a_job_sees_a_pause_its_batch_made() {
        let (health, endpoint) = health_with_endpoint(0).await;
        let batch = Batch::default();
        let store = MemoryStore::new();
        store.insert_endpoint(&endpoint, 100).await.expect("insert");
        let seen = batch
            .endpoint(&store, &acme(), endpoint.id)
            .await
            .expect("read")
            .expect("there");
        assert!(seen.is_active && !batch.has_paused(&endpoint));
        count_all(&batch, &health, &endpoint, &[false; 2], 2).await;
        assert!(batch.has_paused(&endpoint), "read active, paused since");
    }

    #[tokio::test(start_paused = true)]
    async fn a_straggler_does_not_hold_the_others_back() {
        let (health, endpoint) = health_with_endpoint(3).await;
        let batch = Batch::default();
        let straggler = batch.posting(&endpoint);
        let started = tokio::time::Instant::now();
        batch
            .count_outcome(&health, batch.posting(&endpoint), &endpoint, true, 20)
            .await
            .expect("counted");
        assert_eq!(
            started.elapsed(),
            GATHER,
            "waited for the straggler, no longer"
        );
        assert_eq!(count(&health, &endpoint).await, (0, true));
        batch
            .count_outcome(&health, straggler, &endpoint, false, 20)
            .await
            .expect("counted");
        assert_eq!(count(&health, &endpoint).await, (1, true));
    }
}
