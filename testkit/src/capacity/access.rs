//! What IAM sees of each request through the meter: who sent it (the `app/<name>` of the
//! SDK's user agent), the operation, the table or queue, and for DynamoDB every item it
//! touches with the facts IAM's DynamoDB condition keys are made of (the partition key
//! value, `dynamodb:LeadingKeys`; the attribute names, `dynamodb:Attributes`;
//! `ReturnValues` and `Select`). Recorded apart from the pricing, which it never changes;
//! the IAM test (`tests/it/iam.rs`) dumps it as JSON for the policy checker.

use super::Service;
use super::rules::TableSchema;
use hyper::header::HeaderMap;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// One item a DynamoDB request reads or writes (for a `Query`, the partition it reads).
#[derive(Debug, Clone, PartialEq)]
pub struct ItemAccess {
    /// `Put`, `Update`, `Delete`, `ConditionCheck`, `Get` or `Query`.
    pub action: &'static str,
    pub table: String,
    /// The index a `Query` reads, if not the table.
    pub index: Option<String>,
    /// The partition key value (of the index, for an index `Query`); empty if unknown.
    pub partition_key: String,
    /// Top-level attribute names the request names for this item: the key's, the
    /// written item's (`Put`), and those of its update, condition and projection
    /// expressions, `#names` resolved.
    pub attributes: Vec<String>,
}

/// One request.
#[derive(Debug, Clone, PartialEq)]
pub struct Access {
    /// The sender's SDK app name (`app/<name>` in its user agent), empty if none.
    pub caller: String,
    pub service: Service,
    /// The API operation (`PutItem`, `TransactWriteItems`, `SendMessageBatch`, ...).
    pub operation: String,
    /// The table (the first, for multi-table requests) or the queue's name.
    pub resource: String,
    pub items: Vec<ItemAccess>,
    pub return_values: Option<String>,
    pub select: Option<String>,
}

impl Access {
    pub fn to_json(&self) -> Value {
        let items: Vec<Value> = self
            .items
            .iter()
            .map(|i| {
                json!({"action": i.action, "table": i.table, "index": i.index,
                       "partition_key": i.partition_key, "attributes": i.attributes})
            })
            .collect();
        json!({
            "caller": self.caller,
            "service": match self.service {
                Service::DynamoDb => "dynamodb",
                Service::Sqs => "sqs",
                Service::Other => "other",
            },
            "operation": self.operation,
            "resource": self.resource,
            "items": items,
            "return_values": self.return_values,
            "select": self.select,
        })
    }
}

/// The app name in the SDK's user agent (`... app/sender ...`).
pub(super) fn caller(headers: &HeaderMap) -> String {
    ["x-amz-user-agent", "user-agent"]
        .iter()
        .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .flat_map(str::split_whitespace)
        .find_map(|token| token.strip_prefix("app/"))
        .unwrap_or("")
        .to_owned()
}

/// The tables a DynamoDB request names (to look up their schemas first).
pub(super) fn tables(body: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |t: &str| {
        if !t.is_empty() && !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    };
    if let Some(t) = body.get("TableName").and_then(Value::as_str) {
        add(t);
    }
    if let Some(items) = body.get("RequestItems").and_then(Value::as_object) {
        items.keys().for_each(|t| add(t));
    }
    for element in transact_items(body) {
        for (_, spec) in element.as_object().into_iter().flatten() {
            if let Some(t) = spec.get("TableName").and_then(Value::as_str) {
                add(t);
            }
        }
    }
    out
}

fn transact_items(body: &Value) -> impl Iterator<Item = &Value> {
    body.get("TransactItems")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn text(body: &Value, field: &str) -> Option<String> {
    body.get(field).and_then(Value::as_str).map(str::to_owned)
}

/// A DynamoDB request as IAM sees it. `schemas` holds the tables' key schemas (a table
/// missing from it gives items without key names).
pub(super) fn dynamodb(
    caller: String,
    op: &str,
    body: &Value,
    schemas: &HashMap<String, Arc<TableSchema>>,
) -> Access {
    let mut items = Vec::new();
    let table = text(body, "TableName").unwrap_or_default();
    let spec_item = |action, spec: &Value, table: &str| {
        item_access(action, table, spec, schemas.get(table).map(Arc::as_ref))
    };
    match op {
        "PutItem" => items.push(spec_item("Put", body, &table)),
        "UpdateItem" => items.push(spec_item("Update", body, &table)),
        "DeleteItem" => items.push(spec_item("Delete", body, &table)),
        "GetItem" => items.push(spec_item("Get", body, &table)),
        "Query" => items.push(spec_item("Query", body, &table)),
        "BatchWriteItem" | "BatchGetItem" => {
            for (t, requests) in body
                .get("RequestItems")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if op == "BatchGetItem" {
                    for key in requests
                        .get("Keys")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        items.push(spec_item("Get", &json!({ "Key": key }), t));
                    }
                    continue;
                }
                for request in requests.as_array().into_iter().flatten() {
                    if let Some(put) = request.get("PutRequest") {
                        items.push(spec_item("Put", put, t));
                    } else if let Some(delete) = request.get("DeleteRequest") {
                        items.push(spec_item("Delete", delete, t));
                    }
                }
            }
        }
        "TransactWriteItems" | "TransactGetItems" => {
            for element in transact_items(body) {
                for action in ["Put", "Update", "Delete", "ConditionCheck", "Get"] {
                    if let Some(spec) = element.get(action) {
                        let t = text(spec, "TableName").unwrap_or_default();
                        items.push(spec_item(action, spec, &t));
                    }
                }
            }
        }
        _ => {}
    }
    Access {
        caller,
        service: Service::DynamoDb,
        operation: op.to_owned(),
        resource: tables(body).into_iter().next().unwrap_or(table),
        items,
        return_values: text(body, "ReturnValues"),
        select: text(body, "Select"),
    }
}

fn item_access(
    action: &'static str,
    table: &str,
    spec: &Value,
    schema: Option<&TableSchema>,
) -> ItemAccess {
    let names = spec
        .get("ExpressionAttributeNames")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let values = spec
        .get("ExpressionAttributeValues")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let index = text(spec, "IndexName");
    let key_names: Vec<String> = match (schema, &index) {
        (Some(s), Some(i)) => s.index(i).map(|i| i.keys.clone()).unwrap_or_default(),
        (Some(s), None) => s.keys.clone(),
        (None, _) => Vec::new(),
    };
    let mut attributes: Vec<String> = Vec::new();
    let mut add = |name: String| {
        if !attributes.contains(&name) {
            attributes.push(name);
        }
    };
    let partition_key = if action == "Query" {
        let expression = text(spec, "KeyConditionExpression").unwrap_or_default();
        for name in expression_names(&expression, &names) {
            add(name);
        }
        key_names
            .first()
            .and_then(|hash| equality_value(&expression, hash, &names, &values))
            .unwrap_or_default()
    } else {
        let item = spec.get(if action == "Put" { "Item" } else { "Key" });
        let item = item.and_then(Value::as_object);
        for name in item.into_iter().flat_map(Map::keys) {
            add(name.clone());
        }
        key_names
            .first()
            .and_then(|hash| item?.get(hash))
            .and_then(string_value)
            .unwrap_or_default()
    };
    for field in [
        "UpdateExpression",
        "ConditionExpression",
        "ProjectionExpression",
        "FilterExpression",
    ] {
        for name in expression_names(&text(spec, field).unwrap_or_default(), &names) {
            add(name);
        }
    }
    ItemAccess {
        action,
        table: table.to_owned(),
        index,
        partition_key,
        attributes,
    }
}

/// `{"S": "ORG#acme"}` -> `ORG#acme`.
fn string_value(value: &Value) -> Option<String> {
    value
        .as_object()?
        .values()
        .next()?
        .as_str()
        .map(str::to_owned)
}

const KEYWORDS: [&str; 17] = [
    "SET",
    "REMOVE",
    "ADD",
    "DELETE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "BETWEEN",
    "ATTRIBUTE_EXISTS",
    "ATTRIBUTE_NOT_EXISTS",
    "ATTRIBUTE_TYPE",
    "BEGINS_WITH",
    "CONTAINS",
    "SIZE",
    "IF_NOT_EXISTS",
    "LIST_APPEND",
];

/// The top-level attribute names an expression refers to, `#names` resolved:
/// `SET #a = :a, b.c = if_not_exists(b.c, :z) REMOVE d[0]` gives `a` (as `#a` names
/// it), `b`, `d`.
pub fn expression_names(expression: &str, names: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for token in expression.split(|c: char| !(c.is_alphanumeric() || "_#:.".contains(c))) {
        let top = token.split('.').next().unwrap_or("");
        let starts_like_a_name = top
            .chars()
            .next()
            .is_some_and(|c| c != ':' && !c.is_ascii_digit());
        if !starts_like_a_name || KEYWORDS.contains(&top.to_ascii_uppercase().as_str()) {
            continue;
        }
        let name = match top.starts_with('#') {
            true => names
                .get(top)
                .and_then(Value::as_str)
                .unwrap_or(top)
                .to_owned(),
            false => top.to_owned(),
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// The value a key condition sets `attribute` equal to (`#pk = :pk AND begins_with(...)`).
fn equality_value(
    expression: &str,
    attribute: &str,
    names: &Map<String, Value>,
    values: &Map<String, Value>,
) -> Option<String> {
    let mut clauses = vec![String::new()];
    for word in expression.split_whitespace() {
        if word.eq_ignore_ascii_case("AND") {
            clauses.push(String::new());
        } else if let Some(clause) = clauses.last_mut() {
            clause.push(' ');
            clause.push_str(word);
        }
    }
    clauses.iter().find_map(|clause| {
        let (left, right) = clause.split_once('=')?;
        let left = left.trim();
        let resolved = names.get(left).and_then(Value::as_str).unwrap_or(left);
        (resolved == attribute)
            .then(|| values.get(right.trim()).and_then(string_value))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("an object")
    }

    #[test]
    fn expression_names_are_top_level_and_resolved() {
        let names = map(json!({"#a": "last_used_at"}));
        assert_eq!(
            expression_names(
                "SET #a = :a, b.c = if_not_exists(b.c, :z) REMOVE d[0] ADD e :one",
                &names
            ),
            ["last_used_at", "b", "d", "e"]
        );
        assert_eq!(
            expression_names("attribute_exists(pk) AND NOT #a IN (:x, :y)", &names),
            ["pk", "last_used_at"]
        );
    }

    #[test]
    fn a_key_condition_names_its_partition() {
        let names = map(json!({"#pk": "pk"}));
        let values = map(json!({":pk": {"S": "DLV#7"}, ":s": {"S": "0"}}));
        assert_eq!(
            equality_value("#pk = :pk AND begins_with(sk, :s)", "pk", &names, &values),
            Some("DLV#7".to_owned())
        );
        assert_eq!(equality_value("sk = :s", "pk", &names, &values), None);
    }

    #[test]
    fn the_caller_is_the_user_agents_app_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-amz-user-agent",
            "aws-sdk-rust/1.3 ua/2.1 api/dynamodb/1.0 os/linux lang/rust/1.95 app/sender"
                .parse()
                .expect("header"),
        );
        assert_eq!(caller(&headers), "sender");
        assert_eq!(caller(&HeaderMap::new()), "");
    }

    #[test]
    fn an_update_names_its_key_and_expression_attributes() {
        let schema = TableSchema {
            name: "t".into(),
            keys: vec!["pk".into(), "sk".into()],
            indexes: Vec::new(),
        };
        let schemas = HashMap::from([("t".to_owned(), Arc::new(schema))]);
        let body = json!({"TableName": "t",
            "Key": {"pk": {"S": "APIKEY#abc"}, "sk": {"S": "APIKEY"}},
            "UpdateExpression": "SET last_used_at = :at",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeValues": {":at": {"N": "1"}}});
        let access = dynamodb("publish-api".into(), "UpdateItem", &body, &schemas);
        assert_eq!(access.caller, "publish-api");
        assert_eq!(access.items.len(), 1);
        assert_eq!(access.items[0].partition_key, "APIKEY#abc");
        assert_eq!(access.items[0].attributes, ["pk", "sk", "last_used_at"]);
    }
}
