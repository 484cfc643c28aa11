//! DynamoDB's on-demand charges for one request, from the items it touched (pure code; the
//! proxy in [`super::dynamo`] finds the items).
//!
//! Writes (Developer Guide, "DynamoDB item sizes and formats" and "Read/write capacity
//! mode"): `PutItem`, `UpdateItem` and `DeleteItem` consume one write unit per started
//! 1 KB of the larger of the item's size before and after the write ("Even if you update
//! just a subset of the item's attributes, UpdateItem will still consume the full amount
//! ... the larger of the before and after item sizes"); `BatchWriteItem` is sized per item.
//! A write whose condition fails still consumes ("Working with items", conditional writes:
//! "the amount consumed is dependent on the size of the item (whether it's an existing item
//! in the table or a new one you are attempting to create or update)", the larger of the
//! two in its example), at least one unit. The meter knows the attempted item of a `Put`;
//! for a refused `Update` it prices the existing item (evaluating the update expression
//! without applying it is more than the meter does).
//!
//! Indexes ("Using Global Secondary Indexes", write capacity units): a write that does not
//! change an index costs that index nothing; an item entering the index (its key attributes
//! defined) or leaving it costs one write of the entry; a change of an index key attribute
//! costs two ("one to delete the previous item from the index and another write to put the
//! new item into the index"); a change of projected attributes only costs one; "larger index
//! entries require additional write capacity units", so each write is sized by its entry
//! (table key + index key + projected attributes) per started KB.
//!
//! Transactions ("Amazon DynamoDB Transactions: How it works", capacity management):
//! "DynamoDB performs two underlying reads or writes of every item in the transaction: one
//! to prepare the transaction and one to commit the transaction", consumed even when the
//! transaction is cancelled. The index writes are not doubled: "once a transaction
//! completes, the changes made within that transaction are propagated to global secondary
//! indexes", after the two-phase commit, as ordinary index writes. (No AWS page prices
//! that propagation explicitly; [`TRANSACTION_INDEX_FACTOR`] is the one place to change
//! if AWS's bills say otherwise.)
//!
//! Reads: `GetItem` one read unit per started 4 KB of the item, an absent item one unit;
//! half that when eventually consistent; `BatchGetItem` per item; `Query` and `Scan` the
//! total size of the items *read* (evaluated, before any filter, whatever the projection
//! expression asks for) rounded up to 4 KB per request; on an index, the index entries'
//! sizes, and index reads are eventually consistent; `TransactGetItems` two reads per item.

use super::size::{Item, item_size, read_units, write_units};
use serde_json::Value;
use std::fmt::Write as _;

/// Transactional writes count each table item twice (prepare and commit).
pub const TRANSACTION_FACTOR: u64 = 2;
/// Index writes a transaction causes are ordinary writes (see the module docs).
pub const TRANSACTION_INDEX_FACTOR: u64 = 1;

/// What an index copies from the table item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projection {
    All,
    KeysOnly,
    Include(Vec<String>),
}

/// A secondary index (global or local).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub name: String,
    /// Partition key, then sort key if any.
    pub keys: Vec<String>,
    pub projection: Projection,
}

/// A table's primary key and indexes, as `DescribeTable` answers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    pub name: String,
    /// Partition key, then sort key if any.
    pub keys: Vec<String>,
    pub indexes: Vec<Index>,
}

fn key_names(schema: Option<&Value>) -> Vec<String> {
    let mut keys: Vec<(bool, String)> = schema
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|k| {
            let name = k.get("AttributeName")?.as_str()?.to_owned();
            let hash = k.get("KeyType").and_then(Value::as_str) == Some("HASH");
            Some((!hash, name))
        })
        .collect();
    keys.sort();
    keys.into_iter().map(|(_, name)| name).collect()
}

impl TableSchema {
    /// From a `DescribeTable` answer (`{"Table": {...}}`).
    pub fn from_describe(answer: &Value) -> Option<Self> {
        let table = answer.get("Table")?;
        let name = table.get("TableName")?.as_str()?.to_owned();
        let keys = key_names(table.get("KeySchema"));
        let mut indexes = Vec::new();
        for kind in ["GlobalSecondaryIndexes", "LocalSecondaryIndexes"] {
            for index in table
                .get(kind)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(name) = index.get("IndexName").and_then(Value::as_str) else {
                    continue;
                };
                let projection = index.get("Projection");
                let projection = match projection
                    .and_then(|p| p.get("ProjectionType"))
                    .and_then(Value::as_str)
                {
                    Some("KEYS_ONLY") => Projection::KeysOnly,
                    Some("INCLUDE") => Projection::Include(
                        projection
                            .and_then(|p| p.get("NonKeyAttributes"))
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect(),
                    ),
                    _ => Projection::All,
                };
                indexes.push(Index {
                    name: name.to_owned(),
                    keys: key_names(index.get("KeySchema")),
                    projection,
                });
            }
        }
        (!keys.is_empty()).then_some(Self {
            name,
            keys,
            indexes,
        })
    }

    /// The primary key attributes of `item`.
    pub fn key_of(&self, item: &Item) -> Item {
        item.iter()
            .filter(|(name, _)| self.keys.contains(name))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }

    pub fn index(&self, name: &str) -> Option<&Index> {
        self.indexes.iter().find(|i| i.name == name)
    }
}

impl Index {
    /// The entry `item` has in this index: its table key, index key and projected
    /// attributes; `None` when the item lacks an index key attribute (sparse index).
    pub fn entry(&self, table_keys: &[String], item: &Item) -> Option<Item> {
        if !self.keys.iter().all(|k| item.contains_key(k)) {
            return None;
        }
        let keep = |name: &String| match &self.projection {
            Projection::All => true,
            Projection::KeysOnly => table_keys.contains(name) || self.keys.contains(name),
            Projection::Include(extra) => {
                table_keys.contains(name) || self.keys.contains(name) || extra.contains(name)
            }
        };
        Some(
            item.iter()
                .filter(|(name, _)| keep(name))
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
        )
    }

    fn key_values<'a>(&self, entry: &'a Item) -> Vec<Option<&'a Value>> {
        self.keys.iter().map(|k| entry.get(k)).collect()
    }
}

/// What one item's write consumed.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteCost {
    /// Write units on the table (already doubled for a transaction).
    pub table: u64,
    /// Write units on the indexes.
    pub indexes: u64,
    /// How it was worked out, for the request log.
    pub why: String,
}

impl WriteCost {
    pub fn units(&self) -> u64 {
        self.table + self.indexes
    }
}

/// A write that happened: the item went from `before` to `after` (`None`: absent).
pub fn write_cost(
    schema: &TableSchema,
    before: Option<&Item>,
    after: Option<&Item>,
    transactional: bool,
) -> WriteCost {
    let (b, a) = (before.map_or(0, item_size), after.map_or(0, item_size));
    let factor = if transactional { TRANSACTION_FACTOR } else { 1 };
    let table = write_units(b.max(a)) * factor;
    let mut why = format!("table {table} (max of {b} B before, {a} B after");
    if transactional {
        why.push_str(", x2 in a transaction");
    }
    why.push(')');
    let index_factor = if transactional {
        TRANSACTION_INDEX_FACTOR
    } else {
        1
    };
    let mut indexes = 0;
    for index in &schema.indexes {
        let old = before.and_then(|i| index.entry(&schema.keys, i));
        let new = after.and_then(|i| index.entry(&schema.keys, i));
        let (units, reason) = match (&old, &new) {
            (None, None) => continue,
            (None, Some(n)) => {
                let s = item_size(n);
                (write_units(s), format!("enters ({s} B)"))
            }
            (Some(o), None) => {
                let s = item_size(o);
                (write_units(s), format!("leaves ({s} B)"))
            }
            (Some(o), Some(n)) if index.key_values(o) != index.key_values(n) => {
                let (so, sn) = (item_size(o), item_size(n));
                (
                    write_units(so) + write_units(sn),
                    format!("key changed: delete {so} B + put {sn} B"),
                )
            }
            (Some(o), Some(n)) if o == n => (0, "unchanged".to_owned()),
            (Some(o), Some(n)) => {
                let s = item_size(o).max(item_size(n));
                (write_units(s), format!("projection changed ({s} B)"))
            }
        };
        let units = units * index_factor;
        indexes += units;
        let _ = write!(why, "; {} {units} {reason}", index.name);
    }
    WriteCost {
        table,
        indexes,
        why,
    }
}

/// A write refused by its condition (or an item of a cancelled transaction): the larger
/// of the existing item and the item a `Put` attempted, at least one unit; indexes
/// untouched.
pub fn failed_write_cost(
    existing: Option<&Item>,
    attempted: Option<&Item>,
    transactional: bool,
) -> WriteCost {
    let size = existing.map_or(0, item_size);
    let tried = attempted.map_or(0, item_size);
    let factor = if transactional { TRANSACTION_FACTOR } else { 1 };
    let table = write_units(size.max(tried)) * factor;
    let mut what = if existing.is_some() {
        format!("{size} B existing item")
    } else {
        "no existing item".to_owned()
    };
    if attempted.is_some() {
        what.push_str(&format!(", {tried} B attempted"));
    }
    WriteCost {
        table,
        indexes: 0,
        why: format!(
            "table {table} (condition failed: {what}{})",
            if transactional {
                ", x2 in a transaction"
            } else {
                ""
            }
        ),
    }
}

/// Read units for one item read by key (`None`: absent), strongly consistent or not.
pub fn get_cost(size: Option<u64>, consistent: bool) -> (f64, String) {
    let units = read_units(size.unwrap_or(0)) as f64;
    let rru = if consistent { units } else { units / 2.0 };
    let what = size.map_or_else(|| "absent item".to_owned(), |s| format!("{s} B"));
    let how = if consistent {
        "consistent"
    } else {
        "eventually consistent: half"
    };
    (rru, format!("{what} -> {units} unit(s), {how}"))
}

/// Read units for one `Query`/`Scan` request that read items of `sizes` (already the
/// index entries' sizes on an index).
pub fn query_cost(sizes: &[u64], consistent: bool) -> (f64, String) {
    let total: u64 = sizes.iter().sum();
    let units = read_units(total) as f64;
    let rru = if consistent { units } else { units / 2.0 };
    let how = if consistent {
        "consistent"
    } else {
        "eventually consistent: half"
    };
    (
        rru,
        format!(
            "{} item(s) read, {total} B -> {units} unit(s), {how}",
            sizes.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(v: Value) -> Item {
        v.as_object().cloned().expect("an object")
    }

    fn schema() -> TableSchema {
        TableSchema::from_describe(&json!({"Table": {
            "TableName": "t",
            "KeySchema": [
                {"AttributeName": "sk", "KeyType": "RANGE"},
                {"AttributeName": "pk", "KeyType": "HASH"}
            ],
            "GlobalSecondaryIndexes": [
                {"IndexName": "by_owner",
                 "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                 "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["status"]}},
                {"IndexName": "keys",
                 "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                 "Projection": {"ProjectionType": "KEYS_ONLY"}}
            ]
        }}))
        .expect("schema")
    }

    #[test]
    fn describe_table_gives_keys_in_order_and_projections() {
        let s = schema();
        assert_eq!(s.keys, ["pk", "sk"]);
        assert_eq!(
            s.indexes[0].projection,
            Projection::Include(vec!["status".into()])
        );
        assert_eq!(s.indexes[1].projection, Projection::KeysOnly);
    }

    #[test]
    fn index_entries_hold_keys_and_projected_attributes_only() {
        let s = schema();
        let i = item(
            json!({"pk": {"S": "a"}, "sk": {"S": "b"}, "owner": {"S": "o"},
                            "status": {"S": "x"}, "big": {"S": "yyyy"}}),
        );
        let entry = s.indexes[0].entry(&s.keys, &i).expect("in the index");
        assert_eq!(entry.len(), 4, "pk, sk, owner, status");
        let keys_only = s.indexes[1].entry(&s.keys, &i).expect("in the index");
        assert_eq!(keys_only.len(), 3);
        let sparse = item(json!({"pk": {"S": "a"}, "sk": {"S": "b"}}));
        assert!(s.indexes[0].entry(&s.keys, &sparse).is_none());
    }

    #[test]
    fn a_change_outside_every_projection_costs_the_indexes_nothing() {
        let s = schema();
        let before = item(
            json!({"pk": {"S": "a"}, "sk": {"S": "b"}, "owner": {"S": "o"},
                                 "big": {"S": "y"}}),
        );
        let after = item(
            json!({"pk": {"S": "a"}, "sk": {"S": "b"}, "owner": {"S": "o"},
                                "big": {"S": "z"}}),
        );
        let cost = write_cost(&s, Some(&before), Some(&after), false);
        assert_eq!((cost.table, cost.indexes), (1, 0), "{}", cost.why);
    }

    #[test]
    fn an_index_key_change_costs_two_per_index_and_a_transaction_doubles_the_table() {
        let s = schema();
        let before = item(json!({"pk": {"S": "a"}, "sk": {"S": "b"}, "owner": {"S": "o"}}));
        let after = item(json!({"pk": {"S": "a"}, "sk": {"S": "b"}, "owner": {"S": "p"}}));
        let cost = write_cost(&s, Some(&before), Some(&after), false);
        assert_eq!((cost.table, cost.indexes), (1, 4), "{}", cost.why);
        let cost = write_cost(&s, Some(&before), Some(&after), true);
        assert_eq!((cost.table, cost.indexes), (2, 4), "{}", cost.why);
    }

    #[test]
    fn large_entries_take_a_unit_per_started_kilobyte() {
        let s = schema();
        let status = "s".repeat(1500);
        let after = item(
            json!({"pk": {"S": "a"}, "sk": {"S": "b"}, "owner": {"S": "o"},
                                "status": {"S": status}}),
        );
        let cost = write_cost(&s, None, Some(&after), false);
        // Table 2 KB; by_owner entry 2 KB (status projected); keys entry 1.
        assert_eq!((cost.table, cost.indexes), (2, 3), "{}", cost.why);
    }

    #[test]
    fn failed_conditions_cost_the_existing_item_or_one_unit() {
        let big = item(json!({"pk": {"S": "a"}, "blob": {"S": "x".repeat(2000)}}));
        let bigger = item(json!({"pk": {"S": "a"}, "blob": {"S": "x".repeat(3000)}}));
        assert_eq!(failed_write_cost(Some(&big), None, false).units(), 2);
        assert_eq!(
            failed_write_cost(Some(&big), Some(&bigger), false).units(),
            3
        );
        assert_eq!(failed_write_cost(None, None, false).units(), 1);
        assert_eq!(failed_write_cost(None, None, true).units(), 2);
    }

    #[test]
    fn reads_round_to_four_kilobytes_and_halve_when_eventually_consistent() {
        assert_eq!(get_cost(None, true).0, 1.0);
        assert_eq!(get_cost(None, false).0, 0.5);
        assert_eq!(get_cost(Some(5000), true).0, 2.0);
        assert_eq!(query_cost(&[3000, 3000, 3000], false).0, 1.5);
        assert_eq!(query_cost(&[], false).0, 0.5);
    }
}
