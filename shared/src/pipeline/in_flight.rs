//! The per-endpoint cap of the sender: at most `max` attempts to one endpoint at once in
//! this process, so a slow endpoint holds at most that much of the sender's concurrency
//! (a Lambda's batch, the local worker's slots) and the other endpoints' attempts go on.
//! An attempt over the cap waits for one to finish. The cap is per process: on AWS each
//! concurrent sender Lambda has its own.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;
use uuid::Uuid;

pub struct EndpointSlots {
    max: usize,
    busy: Mutex<HashMap<Uuid, usize>>,
    /// A slot came free.
    freed: Notify,
}

/// An attempt's slot, given back when dropped.
pub struct Slot<'a> {
    slots: &'a EndpointSlots,
    endpoint: Uuid,
}

impl EndpointSlots {
    pub fn new(max: u32) -> Self {
        Self {
            max: usize::try_from(max).unwrap_or(usize::MAX).max(1),
            busy: Mutex::default(),
            freed: Notify::new(),
        }
    }

    fn busy(&self) -> MutexGuard<'_, HashMap<Uuid, usize>> {
        self.busy.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for an attempt to `endpoint`, once fewer than `max` are taken.
    pub async fn acquire(&self, endpoint: Uuid) -> Slot<'_> {
        loop {
            // Enabled before looking, so a slot freed after the look wakes this.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(slot) = self.try_acquire(endpoint) {
                return slot;
            }
            freed.await;
        }
    }

    fn try_acquire(&self, endpoint: Uuid) -> Option<Slot<'_>> {
        let mut busy = self.busy();
        let taken = busy.entry(endpoint).or_default();
        if *taken >= self.max {
            return None;
        }
        *taken += 1;
        Some(Slot {
            slots: self,
            endpoint,
        })
    }

    /// Attempts to `endpoint` under way now.
    pub fn in_flight(&self, endpoint: Uuid) -> usize {
        self.busy().get(&endpoint).copied().unwrap_or(0)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        {
            let mut busy = self.slots.busy();
            if let Some(taken) = busy.get_mut(&self.endpoint) {
                *taken -= 1;
                if *taken == 0 {
                    busy.remove(&self.endpoint);
                }
            }
        }
        self.slots.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn an_endpoint_at_its_cap_waits_and_others_do_not() {
        let slots = EndpointSlots::new(2);
        let (slow, other) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let first = slots.acquire(slow).await;
        let _second = slots.acquire(slow).await;
        assert_eq!(slots.in_flight(slow), 2);
        // The other endpoint is not held up by the slow one's cap.
        let _elsewhere = slots.acquire(other).await;
        let third = slots.acquire(slow);
        tokio::pin!(third);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), third.as_mut())
                .await
                .is_err(),
            "a third attempt to the slow endpoint waits"
        );
        drop(first);
        let _third = third.await;
        assert_eq!(slots.in_flight(slow), 2);
    }

    #[tokio::test]
    async fn many_waiters_never_pass_the_cap() {
        let slots = std::sync::Arc::new(EndpointSlots::new(3));
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let endpoint = Uuid::from_u128(7);
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let (slots, peak) = (slots.clone(), peak.clone());
                tokio::spawn(async move {
                    let _slot = slots.acquire(endpoint).await;
                    peak.fetch_max(
                        slots.in_flight(endpoint),
                        std::sync::atomic::Ordering::Relaxed,
                    );
                    tokio::task::yield_now().await;
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        assert_eq!(peak.load(std::sync::atomic::Ordering::Relaxed), 3);
        assert_eq!(slots.in_flight(endpoint), 0);
    }
}
