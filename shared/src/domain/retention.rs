//! How long events, deliveries and attempts are kept (`RETENTION_DAYS`), and whether
//! one is still live.
//!
//! Each item carries `expires_at` (Unix seconds, its creation plus the period), which
//! DynamoDB's TTL deletes items by. TTL deletion lags, by up to a few days, so reads
//! apply the rule themselves: an item created before [`Retention::cutoff`] is not
//! shown, counted or reused, whether or not it is still stored. Every read judges by the
//! item's creation time and the current period, one rule everywhere (should
//! `RETENTION_DAYS` change, items follow the new period at once; TTL deletes by the
//! stamp they were written with). The clock is injectable, so tests can move past an
//! expiry without waiting for it.

use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Default `RETENTION_DAYS`.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        super::now()
    }
}

#[derive(Clone)]
pub struct Retention {
    period: chrono::Duration,
    clock: Arc<dyn Clock>,
}

impl Default for Retention {
    fn default() -> Self {
        Self::days(DEFAULT_RETENTION_DAYS)
    }
}

impl Retention {
    pub fn days(days: u32) -> Self {
        Self {
            period: chrono::Duration::days(i64::from(days)),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same period, judged by `clock`.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        Self { clock, ..self }
    }

    /// An item created at `created` expires then (Unix seconds: its `expires_at`).
    pub fn expires_at(&self, created: DateTime<Utc>) -> i64 {
        (created + self.period).timestamp()
    }

    /// Items created at or before this have expired.
    pub fn cutoff(&self) -> DateTime<Utc> {
        self.clock.now() - self.period
    }

    /// Whether an item created at `created` is still live.
    pub fn is_live(&self, created: DateTime<Utc>) -> bool {
        created > self.cutoff()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Fixed(Mutex<DateTime<Utc>>);

    impl Clock for Fixed {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().expect("lock")
        }
    }

    #[test]
    fn live_until_its_expiry_second() {
        let created = DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let clock = Arc::new(Fixed(Mutex::new(created)));
        let retention = Retention::days(1).with_clock(clock.clone());
        assert_eq!(retention.expires_at(created), 1_700_086_400);
        assert!(retention.is_live(created));
        *clock.0.lock().expect("lock") = created + chrono::Duration::seconds(86_399);
        assert!(retention.is_live(created));
        *clock.0.lock().expect("lock") = created + chrono::Duration::days(1);
        assert!(!retention.is_live(created), "expired at its expires_at");
    }
}
