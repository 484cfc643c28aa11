//! The retry schedule and the circuit breaker, as pure rules.

use std::time::Duration;

/// When to try again after a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Waits before attempts 2, 3, ...: attempt `n` fails → wait `delays[n - 1]`.
    pub delays: Vec<Duration>,
    /// ± fraction applied to each wait (0.2 = ±20 %), so receivers recovering from an
    /// outage are not hit by every retry at the same instant.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            delays: [5, 300, 1800, 7200, 18000, 36000, 36000]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// The wait after attempt `attempt_number` failed, or `None` when it was the last.
    ///
    /// `unit` is a uniform random number in [0, 1) (injected, so tests are exact).
    /// A `Retry-After` (only passed for 429/503) replaces the jittered wait, clamped to
    /// between 1× and 2× the scheduled one: honoured, but neither a hammering nor a
    /// stalling receiver can move the schedule far.
    pub fn next_delay(
        &self,
        attempt_number: u32,
        retry_after: Option<Duration>,
        unit: f64,
    ) -> Option<Duration> {
        let index = usize::try_from(attempt_number).ok()?.checked_sub(1)?;
        let base = *self.delays.get(index)?;
        Some(match retry_after {
            Some(asked) => asked.clamp(base, base.saturating_mul(2)),
            None => {
                let factor = 1.0 + self.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
                base.mul_f64(factor.max(0.0))
            }
        })
    }
}

/// Whether the failure count has reached the threshold that pauses an endpoint.
pub fn breaker_trips(consecutive_failures: u32, threshold: u32) -> bool {
    consecutive_failures >= threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_is_the_spec_one() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts(), 8);
        let mid: Vec<u64> = (1..=7)
            .map(|n| p.next_delay(n, None, 0.5).expect("scheduled").as_secs())
            .collect();
        assert_eq!(mid, [5, 300, 1800, 7200, 18000, 36000, 36000]);
        assert_eq!(p.next_delay(8, None, 0.5), None);
        assert_eq!(p.next_delay(0, None, 0.5), None);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let p = RetryPolicy::default();
        assert_eq!(p.next_delay(2, None, 0.0), Some(Duration::from_secs(240)));
        let high = p.next_delay(2, None, 0.999_999).expect("scheduled");
        assert!(high <= Duration::from_secs(360) && high > Duration::from_secs(359));
    }

    #[test]
    fn retry_after_is_clamped_to_one_to_two_times() {
        let p = RetryPolicy::default();
        let at = |s| p.next_delay(2, Some(Duration::from_secs(s)), 0.0);
        assert_eq!(at(1), Some(Duration::from_secs(300)));
        assert_eq!(at(450), Some(Duration::from_secs(450)));
        assert_eq!(at(86_400), Some(Duration::from_secs(600)));
        assert_eq!(p.next_delay(8, Some(Duration::from_secs(5)), 0.0), None);
    }

    #[test]
    fn breaker() {
        assert!(!breaker_trips(19, 20));
        assert!(breaker_trips(20, 20));
    }
}
