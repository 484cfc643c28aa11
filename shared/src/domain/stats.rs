//! Attempts per endpoint and UTC hour: what the console's chart shows. The sender
//! tallies a batch's attempts per organisation, hour and endpoint ([`HourlyTally`]) and
//! adds them to the store in one write per organisation and hour: a batch usually holds
//! one organisation's jobs, for one or many of its endpoints, so that is about one write
//! per batch.

use super::numbers::EndpointNumber;
use super::org::OrgSlug;
use chrono::{DateTime, Duration, DurationRound, Utc};
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// How far back the statistics route looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsWindow {
    Day,
    Week,
}

impl StatsWindow {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "24h" => Some(Self::Day),
            "7d" => Some(Self::Week),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "24h",
            Self::Week => "7d",
        }
    }

    pub fn hours(self) -> i64 {
        match self {
            Self::Day => 24,
            Self::Week => 24 * 7,
        }
    }

    /// The first and last hour of the window that ends with the hour of `now`.
    pub fn hours_until(self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let last = hour_of(now);
        (last - Duration::hours(self.hours() - 1), last)
    }
}

/// How long hourly counts are kept: the longest window, and a day to spare.
pub const STATS_KEPT_DAYS: i64 = 8;

/// The UTC hour `t` falls in.
pub fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::hours(1)).unwrap_or(t)
}

/// Attempts of one endpoint in one hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourlyCount {
    pub hour: DateTime<Utc>,
    pub succeeded: u64,
    pub failed: u64,
}

/// Every hour from `first` to `last`, oldest first, with the counts stored for it (zero
/// for an hour without any).
pub fn every_hour(
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    stored: &[HourlyCount],
) -> Vec<HourlyCount> {
    let by_hour: BTreeMap<DateTime<Utc>, &HourlyCount> =
        stored.iter().map(|c| (c.hour, c)).collect();
    let mut hours = Vec::new();
    let mut hour = first;
    while hour <= last {
        hours.push(match by_hour.get(&hour) {
            Some(c) => **c,
            None => HourlyCount {
                hour,
                succeeded: 0,
                failed: 0,
            },
        });
        hour += Duration::hours(1);
    }
    hours
}

/// Attempts of one endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointCounts {
    pub succeeded: u64,
    pub failed: u64,
}

/// Attempts of an organisation's endpoints (by number) in one hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgHourCounts {
    pub org: OrgSlug,
    pub hour: DateTime<Utc>,
    pub endpoints: BTreeMap<EndpointNumber, EndpointCounts>,
}

/// (organisation, hour) -> endpoint number -> counts.
type Tally = BTreeMap<(OrgSlug, DateTime<Utc>), BTreeMap<EndpointNumber, EndpointCounts>>;

/// A batch's attempts, per organisation, hour and endpoint, until they are written.
#[derive(Debug, Default)]
pub struct HourlyTally(Mutex<Tally>);

impl HourlyTally {
    /// Count an attempt to endpoint `number` of `org`, started at `at`.
    pub fn attempt(
        &self,
        org: &OrgSlug,
        number: EndpointNumber,
        at: DateTime<Utc>,
        succeeded: bool,
    ) {
        let mut tally = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let counts = tally
            .entry((org.to_owned(), hour_of(at)))
            .or_default()
            .entry(number)
            .or_default();
        if succeeded {
            counts.succeeded += 1;
        } else {
            counts.failed += 1;
        }
    }

    /// Everything counted so far, and the tally emptied.
    pub fn take(&self) -> Vec<OrgHourCounts> {
        let tally = std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner));
        tally
            .into_iter()
            .map(|((org, hour), endpoints)| OrgHourCounts {
                org,
                hour,
                endpoints,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::org::acme;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, h, m, 7)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn a_window_has_every_hour_oldest_first_with_zeros() {
        let (first, last) = StatsWindow::Day.hours_until(at(21, 40));
        assert_eq!(last, at(21, 0) - Duration::seconds(7));
        assert_eq!(first, last - Duration::hours(23));
        let stored = [HourlyCount {
            hour: last - Duration::hours(2),
            succeeded: 3,
            failed: 1,
        }];
        let hours = every_hour(first, last, &stored);
        assert_eq!(hours.len(), 24);
        assert_eq!(hours[0].hour, first);
        assert_eq!(hours[23].hour, last);
        assert_eq!(hours[21], stored[0]);
        assert_eq!(hours.iter().map(|h| h.succeeded + h.failed).sum::<u64>(), 4);
        assert_eq!(every_hour(first, last, &[]).len(), 24);
        let (first, last) = StatsWindow::Week.hours_until(at(0, 0));
        assert_eq!(every_hour(first, last, &[]).len(), 168);
    }

    #[test]
    fn a_tally_counts_per_org_hour_and_endpoint_and_empties() {
        let tally = HourlyTally::default();
        tally.attempt(&acme(), EndpointNumber(4), at(10, 1), true);
        tally.attempt(&acme(), EndpointNumber(4), at(10, 59), false);
        tally.attempt(&acme(), EndpointNumber(5), at(10, 30), true);
        tally.attempt(&acme(), EndpointNumber(4), at(11, 0), true);
        tally.attempt(
            &OrgSlug::parse("globex").expect("slug"),
            EndpointNumber(9),
            at(10, 0),
            false,
        );
        let counts = tally.take();
        assert_eq!(counts.len(), 3, "acme 10h, acme 11h, globex 10h");
        assert_eq!(counts[0].org, "acme");
        assert_eq!(counts[0].hour, hour_of(at(10, 0)));
        assert_eq!(
            counts[0].endpoints,
            BTreeMap::from([
                (
                    EndpointNumber(4),
                    EndpointCounts {
                        succeeded: 1,
                        failed: 1
                    }
                ),
                (
                    EndpointNumber(5),
                    EndpointCounts {
                        succeeded: 1,
                        failed: 0
                    }
                ),
            ])
        );
        assert_eq!(counts[2].org, "globex");
        assert!(tally.take().is_empty());
    }
}
