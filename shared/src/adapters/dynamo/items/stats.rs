//! An organisation's hourly attempt counts' item.

use super::{from_millis, millis};
use crate::adapters::dynamo::table_keys;
use crate::domain::EndpointNumber;
use crate::domain::OrgSlug;
use crate::domain::stats::{EndpointCounts, OrgHourCounts, STATS_KEPT_DAYS};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};

/// An organisation's attempts in one UTC hour, kept [`STATS_KEPT_DAYS`]: `h` (the
/// hour, Unix milliseconds) and, per endpoint number `n` that had attempts, `s<n>` and
/// `f<n>`. One item per organisation rather than per endpoint, so a batch's attempts to
/// many endpoints of one organisation are one write; the sender `ADD`s to it.
pub fn stats_item(c: &OrgHourCounts) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(table_keys::stats_pk(&c.org)),
        ),
        (
            "sk".to_owned(),
            AttributeValue::S(table_keys::hour_sk(c.hour)),
        ),
        (
            "h".to_owned(),
            AttributeValue::N(millis(c.hour).to_string()),
        ),
        (
            "expires_at".to_owned(),
            AttributeValue::N(stats_expiry(c.hour).to_string()),
        ),
    ]);
    for (number, counts) in &c.endpoints {
        let (s, f) = table_keys::stats_attributes(*number);
        item.insert(s, AttributeValue::N(counts.succeeded.to_string()));
        item.insert(f, AttributeValue::N(counts.failed.to_string()));
    }
    item
}

/// An hourly item back: the organisation, the hour and each endpoint's counts.
pub fn stats_of(item: &HashMap<String, AttributeValue>) -> Result<OrgHourCounts, String> {
    let number = |name: &str| -> Result<u64, String> {
        match item.get(name) {
            Some(AttributeValue::N(n)) => n.parse().map_err(|_| format!("{name} is {n}")),
            _ => Ok(0),
        }
    };
    let org = match item.get("pk") {
        Some(AttributeValue::S(pk)) => pk.strip_prefix("STATS#").map(OrgSlug::stored),
        _ => None,
    }
    .ok_or("statistics item without an organisation")?;
    let hour = from_millis(i64::try_from(number("h")?).map_err(|e| e.to_string())?)?;
    let mut endpoints = BTreeMap::new();
    // An endpoint with only successes, or only failures, in the hour has one of the two.
    let numbers: std::collections::BTreeSet<EndpointNumber> = item
        .keys()
        .filter_map(|name| {
            name.strip_prefix(['s', 'f'])?
                .parse()
                .ok()
                .map(EndpointNumber)
        })
        .collect();
    for n in numbers {
        let (s, f) = table_keys::stats_attributes(n);
        endpoints.insert(
            n,
            EndpointCounts {
                succeeded: number(&s)?,
                failed: number(&f)?,
            },
        );
    }
    Ok(OrgHourCounts {
        org,
        hour,
        endpoints,
    })
}

/// When an hour's counts may go (epoch seconds).
pub fn stats_expiry(hour: DateTime<Utc>) -> i64 {
    (hour + chrono::Duration::days(STATS_KEPT_DAYS)).timestamp()
}
