//! The table's item shapes, one file per port whose items they are (key formats in
//! `table_keys`). The local server's state file stores the same shapes.

pub mod deliveries;
pub mod endpoints;
pub mod events;
pub mod keys;
pub mod recoveries;
pub mod schedule;
pub mod stats;

use chrono::{DateTime, Utc};

/// Times are stored as epoch milliseconds: shorter than text, and exact.
fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(ms: i64) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| format!("stored time {ms} is out of range"))
}
