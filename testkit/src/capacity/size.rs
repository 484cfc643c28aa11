//! Item sizes and capacity units by AWS's documented on-demand rules.
//!
//! Sources (Amazon DynamoDB Developer Guide):
//! - "DynamoDB item sizes and formats" (`CapacityUnitCalculations.html`): the size of an
//!   item is the sum of its attribute names (UTF-8 bytes) and values; a string is its
//!   UTF-8 bytes; a number is "approximately 1 byte per two significant digits, plus 1
//!   byte" (leading and trailing zeroes trimmed); a binary value is its raw bytes (not the
//!   base64 text); a null or Boolean is 1 byte; a List or Map "requires 3 bytes of
//!   overhead, regardless of its contents" and "each List or Map element also requires
//!   1 byte of overhead" (the current page; older copies lack this last rule).
//! - "Read/write capacity mode" and the same page: a write unit covers 1 KB, a read unit
//!   4 KB; sizes are rounded up to the next unit boundary.
//! - "Using Global Secondary Indexes": an index entry holds the table's primary key, the
//!   index key and the projected attributes; reads on an index are sized by those
//!   entries, and larger index entries take more write units.
//!
//! Sets have no documented overhead: a set is the sum of its elements.

use serde_json::{Map, Value};

/// An item in DynamoDB's JSON wire form: `{"name": {"S": "..."}, ...}`.
pub type Item = Map<String, Value>;

/// One write unit covers this many bytes (1 KB).
pub const WRITE_UNIT_BYTES: u64 = 1024;
/// One read unit covers this many bytes (4 KB).
pub const READ_UNIT_BYTES: u64 = 4096;

/// The size of an item: every attribute's name plus its value.
pub fn item_size(item: &Item) -> u64 {
    item.iter()
        .map(|(name, value)| name.len() as u64 + value_size(value))
        .sum()
}

/// The size of one attribute value (`{"S": "abc"}` is 3).
pub fn value_size(value: &Value) -> u64 {
    let Some((kind, v)) = value.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    match kind.as_str() {
        "S" => text_len(v),
        "N" => v.as_str().map_or(0, number_size),
        "B" => v.as_str().map_or(0, binary_len),
        "BOOL" | "NULL" => 1,
        "SS" => elements(v).map(text_len).sum(),
        "NS" => elements(v).filter_map(Value::as_str).map(number_size).sum(),
        "BS" => elements(v).filter_map(Value::as_str).map(binary_len).sum(),
        // 3 bytes per List or Map, 1 more per element.
        "L" => 3 + elements(v).map(|e| value_size(e) + 1).sum::<u64>(),
        "M" => {
            3 + v.as_object().map_or(0, |m| {
                m.iter()
                    .map(|(name, e)| name.len() as u64 + value_size(e) + 1)
                    .sum()
            })
        }
        _ => 0,
    }
}

fn elements(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().map(|a| a.iter()).into_iter().flatten()
}

fn text_len(v: &Value) -> u64 {
    v.as_str().map_or(0, |s| s.len() as u64)
}

/// Raw bytes of a base64 value (DynamoDB's JSON carries binary as base64).
fn binary_len(b64: &str) -> u64 {
    (b64.trim_end_matches('=').len() as u64 * 3) / 4
}

/// "1 byte per two significant digits, plus 1 byte": the digits with sign, decimal point,
/// exponent and leading and trailing zeroes left out. Zero is 1 byte.
pub fn number_size(n: &str) -> u64 {
    let mantissa = n
        .trim()
        .trim_start_matches(['-', '+'])
        .split(['e', 'E'])
        .next()
        .unwrap_or("");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len() as u64;
    significant.div_ceil(2) + 1
}

/// Write units for an item (or index entry) of `bytes`: per started KB, at least one.
pub fn write_units(bytes: u64) -> u64 {
    bytes.div_ceil(WRITE_UNIT_BYTES).max(1)
}

/// Read units (strongly consistent) for `bytes` read: per started 4 KB, at least one
/// (reading an absent item, or a query that matches nothing, still costs one).
pub fn read_units(bytes: u64) -> u64 {
    bytes.div_ceil(READ_UNIT_BYTES).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(v: Value) -> Item {
        v.as_object().cloned().expect("an object")
    }

    #[test]
    fn strings_are_name_plus_utf8_bytes() {
        assert_eq!(item_size(&item(json!({"pk": {"S": "ORG#acme"}}))), 2 + 8);
        // "é" is two bytes in UTF-8, "€" three.
        assert_eq!(item_size(&item(json!({"n": {"S": "é€"}}))), 1 + 5);
        assert_eq!(item_size(&item(json!({"e": {"S": ""}}))), 1);
    }

    #[test]
    fn numbers_take_a_byte_per_two_significant_digits_plus_one() {
        assert_eq!(number_size("0"), 1);
        assert_eq!(number_size("7"), 2);
        assert_eq!(number_size("42"), 2);
        assert_eq!(number_size("123"), 3);
        assert_eq!(number_size("1000"), 2, "trailing zeroes trimmed");
        assert_eq!(number_size("0.001"), 2, "leading zeroes trimmed");
        assert_eq!(number_size("-12.50"), 3, "sign and point are not digits");
        assert_eq!(
            number_size("1795766400"),
            5,
            "a 10-digit epoch: 8 significant"
        );
        assert_eq!(number_size("1.5E+10"), 2);
        assert_eq!(item_size(&item(json!({"seq": {"N": "12345"}}))), 3 + 4);
    }

    #[test]
    fn binary_is_raw_bytes_and_bool_null_one_byte() {
        // "aGVsbG8=" is base64 of "hello" (5 bytes).
        assert_eq!(item_size(&item(json!({"b": {"B": "aGVsbG8="}}))), 1 + 5);
        assert_eq!(item_size(&item(json!({"ok": {"BOOL": true}}))), 2 + 1);
        assert_eq!(item_size(&item(json!({"x": {"NULL": true}}))), 1 + 1);
    }

    #[test]
    fn lists_and_maps_take_three_bytes_and_one_per_element() {
        assert_eq!(value_size(&json!({"L": []})), 3);
        assert_eq!(value_size(&json!({"M": {}})), 3);
        // ["ab", "c"]: 3 + (2 + 1) + (1 + 1)
        assert_eq!(value_size(&json!({"L": [{"S": "ab"}, {"S": "c"}]})), 8);
        // {"k": "v", "n": 10}: 3 + (1 + 1 + 1) + (1 + 2 + 1)
        assert_eq!(
            value_size(&json!({"M": {"k": {"S": "v"}, "n": {"N": "10"}}})),
            10
        );
        // Nested: [[1]]: 3 + ((3 + (2 + 1)) + 1)
        assert_eq!(value_size(&json!({"L": [{"L": [{"N": "1"}]}]})), 10);
    }

    #[test]
    fn sets_are_the_sum_of_their_elements() {
        assert_eq!(value_size(&json!({"SS": ["ab", "cde"]})), 5);
        assert_eq!(value_size(&json!({"NS": ["1", "123"]})), 2 + 3);
        assert_eq!(value_size(&json!({"BS": ["aGVsbG8=", "aGk="]})), 5 + 2);
    }

    #[test]
    fn units_round_up_and_never_go_below_one() {
        assert_eq!(write_units(0), 1);
        assert_eq!(write_units(1024), 1);
        assert_eq!(write_units(1025), 2);
        assert_eq!(read_units(0), 1);
        assert_eq!(read_units(4096), 1);
        assert_eq!(read_units(4097), 2);
    }
}
