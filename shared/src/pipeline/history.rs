//! Reading delivery history: one delivery with its payload, an endpoint's history a page
//! at a time, and the organisation's deliveries across its endpoints.
//!
//! The organisation's search reads each endpoint's history newest first from a position
//! (its sequence numbers follow creation order), at most `limit` deliveries per endpoint
//! and page, and merges the histories by time. A page ends when `limit` deliveries
//! matched, when every history is read to its end, or when one history's read is used
//! up (what lies below it is unread, so nothing older may be shown yet): then the cursor
//! holds each history's next position, and the next page goes on from there. A page can
//! thus come back short, or empty, with a cursor, when the filters match rarely; the
//! cursor is `None` only when nothing is left. There is no total: counting would read
//! everything.

use super::lookup::{self, RequestError};
use crate::domain::OrgSlug;
use crate::domain::{Delivery, DeliverySeq, DeliveryStatus, EndpointNumber};
use crate::ports::{DeliveryStore, EndpointStore, EventStore, StoreResult};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// The history a request may read: the organisation's endpoints, their deliveries and
/// the events those carry.
pub struct History {
    pub endpoints: Arc<dyn EndpointStore>,
    pub deliveries: Arc<dyn DeliveryStore>,
    pub events: Arc<dyn EventStore>,
}

/// What the organisation's search asks for.
#[derive(Debug, Default)]
pub struct Search {
    /// Only this endpoint's deliveries (another organisation's endpoint: none).
    pub endpoint_id: Option<Uuid>,
    pub filters: Filters,
    /// Where the previous page ended.
    pub cursor: Option<Cursor>,
    pub limit: u32,
}

impl History {
    /// The delivery and the exact envelope it sends (`None` once the event expired).
    pub async fn delivery(
        &self,
        org: &OrgSlug,
        id: Uuid,
    ) -> Result<(Delivery, Option<String>), RequestError> {
        let delivery =
            lookup::delivery(self.endpoints.as_ref(), self.deliveries.as_ref(), org, id).await?;
        let payload = self
            .events
            .get_event(org, &delivery.event_id)
            .await?
            .map(|event| event.payload);
        Ok((delivery, payload))
    }

    /// Page `page` (from 1) of an endpoint's history, newest first, and the total.
    pub async fn endpoint_page(
        &self,
        org: &OrgSlug,
        endpoint_id: Uuid,
        page: u32,
        per_page: u32,
    ) -> Result<(Vec<Delivery>, u64), RequestError> {
        let endpoint = lookup::endpoint(self.endpoints.as_ref(), org, endpoint_id).await?;
        Ok(self
            .deliveries
            .delivery_page(&endpoint, page, per_page)
            .await?)
    }

    /// One page of the organisation's deliveries, newest first, and the cursor for the
    /// next (`None`: nothing is left).
    pub async fn search(
        &self,
        org: &OrgSlug,
        search: &Search,
    ) -> StoreResult<(Vec<Delivery>, Option<Cursor>)> {
        // The organisation's endpoints (at most 100), or the one asked for if it is its own.
        let endpoints = self.endpoints.list_endpoints(org).await?;
        let starts: Vec<(EndpointNumber, DeliverySeq)> = endpoints
            .iter()
            .filter(|e| search.endpoint_id.is_none_or(|id| id == e.id))
            .filter_map(|e| {
                let from = match &search.cursor {
                    None => e.delivery_seq,
                    Some(c) => (*c.p.get(&e.number)?).min(e.delivery_seq),
                };
                (from > DeliverySeq::NONE).then_some((e.number, from))
            })
            .collect();
        page(
            self.deliveries.as_ref(),
            &starts,
            &search.filters,
            search.limit,
        )
        .await
    }
}

/// What a delivery must be to be shown.
#[derive(Debug, Default)]
pub struct Filters {
    pub statuses: Vec<DeliveryStatus>,
    pub event_type: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl Filters {
    fn matches(&self, d: &Delivery) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&d.status))
            && self.event_type.as_ref().is_none_or(|t| *t == d.event_type)
            && self.until.is_none_or(|until| d.created_at < until)
    }

    /// Older than `since`: nothing further down this history can match.
    fn below_since(&self, d: &Delivery) -> bool {
        self.since.is_some_and(|since| d.created_at < since)
    }
}

/// Where each history goes on: endpoint number → the next sequence number to read.
/// A history absent from a cursor is read to its end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    v: u8,
    p: BTreeMap<EndpointNumber, DeliverySeq>,
}

impl Cursor {
    /// The opaque text a client gets and gives back.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// A cursor this service gave; `None` for anything else.
    pub fn decode(raw: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        serde_json::from_slice::<Self>(&bytes)
            .ok()
            .filter(|c| c.v == 1)
    }
}

/// How many more reads a page may make after its first one per history: bounds what a
/// page costs when the filters match rarely.
const REFILLS: u32 = 4;

/// One history as a page reads it: what was read and not yet merged, newest first, and
/// the sequence number to read from next (`NONE`: the end was reached).
struct Head {
    number: EndpointNumber,
    buffered: std::collections::VecDeque<Delivery>,
    next: DeliverySeq,
}

async fn read(
    store: &dyn DeliveryStore,
    number: EndpointNumber,
    from: DeliverySeq,
    limit: u32,
) -> StoreResult<Head> {
    let read = store.history_newest(number, from, limit).await?;
    let next = match read.last() {
        Some(last) if read.len() == limit as usize => last.key.seq.previous(),
        _ => DeliverySeq::NONE,
    };
    Ok(Head {
        number,
        buffered: read.into(),
        next,
    })
}

/// One page: the histories (endpoint number, the sequence number to read from) merged
/// newest first into at most `limit` matches, and the cursor for what is left (`None`:
/// nothing is). The first read of each history is small (its share of the page), a
/// history used up is read again (`limit` at a time, [`REFILLS`] times at most), and
/// when the reads are spent the page ends where it is.
async fn page(
    store: &dyn DeliveryStore,
    starts: &[(EndpointNumber, DeliverySeq)],
    filters: &Filters,
    limit: u32,
) -> StoreResult<(Vec<Delivery>, Option<Cursor>)> {
    let share = limit
        .div_ceil(u32::try_from(starts.len().max(1)).unwrap_or(u32::MAX))
        .saturating_add(1);
    let mut heads = Vec::with_capacity(starts.len());
    for &(number, from) in starts {
        heads.push(read(store, number, from, share).await?);
    }
    let mut refills = REFILLS;
    let mut shown = Vec::new();
    'page: while shown.len() < limit as usize {
        for head in heads.iter_mut() {
            if head.buffered.is_empty() && head.next > DeliverySeq::NONE {
                if refills == 0 {
                    // Unread deliveries there may be newer than every other's next one.
                    break 'page;
                }
                refills -= 1;
                *head = read(store, head.number, head.next, limit).await?;
            }
        }
        let Some(newest) = heads
            .iter_mut()
            .filter(|h| !h.buffered.is_empty())
            .max_by_key(|h| h.buffered.front().map(|d| (d.created_at, d.id)))
        else {
            break;
        };
        let Some(d) = newest.buffered.pop_front() else {
            break;
        };
        if filters.below_since(&d) {
            // Everything further down this history is older still.
            newest.buffered.clear();
            newest.next = DeliverySeq::NONE;
            continue;
        }
        if filters.matches(&d) {
            shown.push(d);
        }
    }
    let positions: BTreeMap<EndpointNumber, DeliverySeq> = heads
        .iter()
        .filter_map(|h| match h.buffered.front() {
            Some(d) => Some((h.number, d.key.seq)),
            None => (h.next > DeliverySeq::NONE).then_some((h.number, h.next)),
        })
        .collect();
    let cursor = (!positions.is_empty()).then_some(Cursor { v: 1, p: positions });
    Ok((shown, cursor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryStore;
    use crate::domain::org::acme;
    use crate::domain::{Event, Target};

    /// A place in a history: the endpoint's number and the sequence number there.
    type Place = (EndpointNumber, DeliverySeq);

    fn place(number: u32, seq: u64) -> Place {
        (EndpointNumber(number), DeliverySeq(seq))
    }

    fn delivery(number: u32, seq: u64, minute: i64, status: DeliveryStatus) -> Delivery {
        let created = DateTime::from_timestamp(1_790_000_000 + minute * 60, 0).expect("time");
        let event = Event {
            org: acme(),
            id: format!("e{number}-{seq}"),
            event_type: if seq.is_multiple_of(2) {
                "a.even"
            } else {
                "a.odd"
            }
            .into(),
            created_at: created,
            payload: "{}".into(),
            targets: vec![],
            fan_out_until: None,
            fan_out_holder: None,
        };
        let target = Target {
            endpoint_id: Uuid::nil(),
            endpoint_number: EndpointNumber(number),
            seq_floor: DeliverySeq(seq - 1),
        };
        let mut d = Delivery::new(&event, &target, DeliverySeq(seq), true);
        d.status = status;
        d
    }

    /// Endpoint 1 every 2 minutes, endpoint 2 every 3 (every third failed), endpoint 3
    /// twice long ago; numbered in creation order, as the service numbers them.
    fn histories() -> Vec<Delivery> {
        let one = (1..=20).map(|s| delivery(1, s, 2 * s as i64, DeliveryStatus::Succeeded));
        let two = (1..=13_u64).map(|s| {
            let status = if s.is_multiple_of(3) {
                DeliveryStatus::Failed
            } else {
                DeliveryStatus::Succeeded
            };
            delivery(2, s, 3 * s as i64, status)
        });
        let three = (1..=2).map(|s| delivery(3, s, s as i64 - 100, DeliveryStatus::Retrying));
        one.chain(two).chain(three).collect()
    }

    async fn store() -> (MemoryStore, Vec<Place>) {
        // Far in the past: judged by a retention long enough to keep them.
        let store = MemoryStore::new().with_retention(crate::domain::Retention::days(100_000));
        let all = histories();
        for d in &all {
            assert!(store.insert_delivery(d).await.expect("insert"));
        }
        (store, vec![place(1, 20), place(2, 13), place(3, 2)])
    }

    /// Every page until the cursor runs out; the keys shown, in order.
    async fn all_pages(filters: &Filters, limit: u32) -> Vec<Place> {
        let (store, tops) = store().await;
        let mut shown = Vec::new();
        let mut starts = tops.clone();
        for _ in 0..200 {
            let (page, next) = page(&store, &starts, filters, limit).await.expect("page");
            assert!(page.len() <= limit as usize);
            shown.extend(page.iter().map(|d| (d.key.endpoint_number, d.key.seq)));
            let Some(next) = next else {
                return shown;
            };
            let next = Cursor::decode(&next.encode()).expect("round trip");
            starts = next.p.into_iter().collect();
        }
        panic!("the cursor never ran out");
    }

    fn newest_first(keep: impl Fn(&Delivery) -> bool) -> Vec<Place> {
        let all = histories();
        let mut every: Vec<&Delivery> = all.iter().filter(|d| keep(d)).collect();
        every.sort_by_key(|d| std::cmp::Reverse((d.created_at, d.id)));
        every
            .iter()
            .map(|d| (d.key.endpoint_number, d.key.seq))
            .collect()
    }

    #[tokio::test]
    async fn pages_go_through_everything_once_newest_first() {
        for limit in [1, 2, 5, 7, 100] {
            assert_eq!(
                all_pages(&Filters::default(), limit).await,
                newest_first(|_| true),
                "limit {limit}"
            );
        }
    }

    #[tokio::test]
    async fn filters_keep_the_order_and_miss_nothing() {
        let failed = Filters {
            statuses: vec![DeliveryStatus::Failed, DeliveryStatus::Retrying],
            ..Filters::default()
        };
        assert_eq!(
            all_pages(&failed, 2).await,
            newest_first(|d| matches!(d.status, DeliveryStatus::Failed | DeliveryStatus::Retrying))
        );
        let since = DateTime::from_timestamp(1_790_000_000 + 10 * 60, 0).expect("since");
        let until = DateTime::from_timestamp(1_790_000_000 + 30 * 60, 0).expect("until");
        let window = Filters {
            event_type: Some("a.even".into()),
            since: Some(since),
            until: Some(until),
            ..Filters::default()
        };
        assert_eq!(
            all_pages(&window, 3).await,
            newest_first(|d| d.event_type == "a.even"
                && d.created_at >= since
                && d.created_at < until)
        );
    }

    #[test]
    fn a_cursor_is_opaque_and_checked() {
        let c = Cursor {
            v: 1,
            p: BTreeMap::from([place(7, 42)]),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("not a cursor"), None);
        assert_eq!(
            Cursor::decode(&URL_SAFE_NO_PAD.encode(br#"{"v":2,"p":{}}"#)),
            None
        );
    }
}
