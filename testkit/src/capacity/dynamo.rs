//! Pricing DynamoDB requests: find the items a request touches, read them from moto as
//! needed, and apply [`super::rules`].

use super::access;
use super::rules::{self, TableSchema, WriteCost};
use super::size::{Item, item_size};
use super::{Charge, Forward, Service, Shared, Upstream, key_shape};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

const JSON_1_0: &str = "application/x-amz-json-1.0";

pub(super) async fn handle(
    shared: &Shared,
    op: &str,
    request: &Forward,
) -> Result<Upstream, String> {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    record_access(shared, op, request, &body).await;
    match op {
        "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" | "TransactWriteItems" => {
            write(shared, op, request, &body).await
        }
        "GetItem" | "BatchGetItem" | "TransactGetItems" => get(shared, op, request, &body).await,
        "Query" | "Scan" => query(shared, op, request, &body).await,
        _ => {
            let upstream = shared.forward(request).await?;
            if matches!(op, "CreateTable" | "UpdateTable" | "DeleteTable")
                && let Some(table) = body.get("TableName").and_then(Value::as_str)
            {
                shared.schemas().remove(table);
            }
            shared.record(Charge {
                service: Service::DynamoDb,
                operation: op.to_owned(),
                resource: text(&body, "TableName"),
                shape: op.to_owned(),
                wru: 0.0,
                rru: 0.0,
                sqs_requests: 0,
                why: "control plane: not billed per request".to_owned(),
            });
            Ok(upstream)
        }
    }
}

/// What IAM sees of the request (apart from its price): item requests name their tables'
/// keys, so their schemas are looked up first (a table moto does not know gives items
/// without key names; the request then fails on its own).
async fn record_access(shared: &Shared, op: &str, request: &Forward, body: &Value) {
    let mut schemas = HashMap::new();
    let item_operation = op.ends_with("Item") || op.ends_with("Items") || op == "Query";
    if item_operation {
        for table in access::tables(body) {
            if let Ok(found) = schema(shared, request, &table).await {
                schemas.insert(table, found);
            }
        }
    }
    let caller = access::caller(&request.headers);
    shared.record_access(access::dynamodb(caller, op, body, &schemas));
}

fn text(body: &Value, field: &str) -> String {
    body.get(field)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

fn object(value: Option<&Value>) -> Item {
    value
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The `Items` of a `Query` or `Scan` answer.
fn answer_items(answer: &Value) -> Vec<Item> {
    answer
        .get("Items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .cloned()
        .collect()
}

/// One of the meter's own DynamoDB requests (not counted).
async fn call(shared: &Shared, like: &Forward, op: &str, body: Value) -> Result<Value, String> {
    let upstream = shared
        .call(
            like,
            &format!("DynamoDB_20120810.{op}"),
            JSON_1_0,
            body.to_string().into_bytes(),
        )
        .await?;
    if !upstream.status.is_success() {
        return Err(format!(
            "{op}: {} {}",
            upstream.status,
            String::from_utf8_lossy(&upstream.body)
        ));
    }
    Ok(upstream.json())
}

/// The table's key and indexes (`DescribeTable`, once per table).
async fn schema(shared: &Shared, like: &Forward, table: &str) -> Result<Arc<TableSchema>, String> {
    if let Some(schema) = shared.schemas().get(table) {
        return Ok(schema.clone());
    }
    let answer = call(shared, like, "DescribeTable", json!({"TableName": table})).await?;
    let schema = Arc::new(
        TableSchema::from_describe(&answer)
            .ok_or_else(|| format!("DescribeTable {table}: no key schema"))?,
    );
    shared.schemas().insert(table.to_owned(), schema.clone());
    Ok(schema)
}

/// The whole stored item (consistent read), or `None` if there is none.
async fn full_item(
    shared: &Shared,
    like: &Forward,
    table: &str,
    key: &Item,
) -> Result<Option<Item>, String> {
    let answer = call(
        shared,
        like,
        "GetItem",
        json!({"TableName": table, "Key": key, "ConsistentRead": true}),
    )
    .await?;
    Ok(answer.get("Item").and_then(Value::as_object).cloned())
}

/// `ORG#/EP#`: the constant part of each key attribute, in key order.
fn keys_shape(schema: &TableSchema, key: &Item) -> String {
    schema
        .keys
        .iter()
        .filter_map(|k| key.get(k))
        .map(key_shape)
        .collect::<Vec<_>>()
        .join("/")
}

/// What an update expression does, by clause, `#names` resolved and values left out:
/// `SET a = :a, b = if_not_exists(b, :z) REMOVE c` gives `SET a, b REMOVE c`.
fn update_summary(expression: &str, names: &Item) -> String {
    let mut clauses: Vec<(String, Vec<String>)> = Vec::new();
    for token in expression.split(|c: char| !(c.is_alphanumeric() || "_#:.".contains(c))) {
        if token.is_empty() || token.starts_with(':') {
            continue;
        }
        let upper = token.to_ascii_uppercase();
        if ["SET", "REMOVE", "ADD", "DELETE"].contains(&upper.as_str()) {
            clauses.push((upper, Vec::new()));
            continue;
        }
        if ["IF_NOT_EXISTS", "LIST_APPEND"].contains(&upper.as_str()) {
            continue;
        }
        let name = match token.strip_prefix('#') {
            Some(_) => names
                .get(token)
                .and_then(Value::as_str)
                .unwrap_or(token)
                .to_owned(),
            None => token.to_owned(),
        };
        if let Some((_, attributes)) = clauses.last_mut()
            && !attributes.contains(&name)
        {
            attributes.push(name);
        }
    }
    clauses
        .into_iter()
        .map(|(clause, attributes)| format!("{clause} {}", attributes.join(", ")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One item a write request touches.
struct Target {
    table: String,
    key: Item,
    /// `Put`, `Update`, `Delete` or `ConditionCheck`.
    action: &'static str,
    schema: Arc<TableSchema>,
    /// The item a `Put` writes.
    attempted: Option<Item>,
    /// For the request's shape.
    label: String,
}

async fn target(
    shared: &Shared,
    like: &Forward,
    action: &'static str,
    spec: &Value,
) -> Result<Target, String> {
    let table = text(spec, "TableName");
    let schema = schema(shared, like, &table).await?;
    let attempted = (action == "Put").then(|| object(spec.get("Item")));
    let key = match &attempted {
        Some(item) => schema.key_of(item),
        None => object(spec.get("Key")),
    };
    let mut label = format!("{action} {}", keys_shape(&schema, &key));
    if action == "Update" {
        let names = object(spec.get("ExpressionAttributeNames"));
        let summary = update_summary(
            spec.get("UpdateExpression")
                .and_then(Value::as_str)
                .unwrap_or(""),
            &names,
        );
        label.push_str(&format!(" [{summary}]"));
    }
    Ok(Target {
        table,
        key,
        action,
        schema,
        attempted,
        label,
    })
}

async fn targets(
    shared: &Shared,
    like: &Forward,
    op: &str,
    body: &Value,
) -> Result<Vec<Target>, String> {
    let mut out = Vec::new();
    match op {
        "PutItem" => out.push(target(shared, like, "Put", body).await?),
        "UpdateItem" => out.push(target(shared, like, "Update", body).await?),
        "DeleteItem" => out.push(target(shared, like, "Delete", body).await?),
        "BatchWriteItem" => {
            for (table, requests) in object(body.get("RequestItems")) {
                for request in requests.as_array().into_iter().flatten() {
                    let (action, spec) = if let Some(put) = request.get("PutRequest") {
                        ("Put", put)
                    } else if let Some(delete) = request.get("DeleteRequest") {
                        ("Delete", delete)
                    } else {
                        continue;
                    };
                    let mut spec = spec.clone();
                    spec["TableName"] = Value::String(table.clone());
                    out.push(target(shared, like, action, &spec).await?);
                }
            }
        }
        "TransactWriteItems" => {
            for item in body
                .get("TransactItems")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for action in ["Put", "Update", "Delete", "ConditionCheck"] {
                    if let Some(spec) = item.get(action) {
                        out.push(target(shared, like, action, spec).await?);
                    }
                }
            }
        }
        _ => {}
    }
    Ok(out)
}

async fn write(
    shared: &Shared,
    op: &str,
    request: &Forward,
    body: &Value,
) -> Result<Upstream, String> {
    let transactional = op == "TransactWriteItems";
    // No other write through the meter may land between the reads and the write.
    let _writes = shared.writes.lock().await;
    let targets = match targets(shared, request, op, body).await {
        Ok(targets) => targets,
        // Not something the meter can price (say, an unknown table): pass it on as is.
        Err(err) => {
            let upstream = shared.forward(request).await?;
            record_write(
                shared,
                op,
                "",
                op.to_owned(),
                0,
                format!("not priced: {err}"),
            );
            return Ok(upstream);
        }
    };
    let mut before = Vec::with_capacity(targets.len());
    for t in &targets {
        before.push(full_item(shared, request, &t.table, &t.key).await?);
    }
    let upstream = shared.forward(request).await?;
    let error = upstream.error_type();
    let reasons: Vec<String> = upstream
        .json()
        .get("CancellationReasons")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| text(r, "Code"))
        .collect();

    let mut units = 0;
    let mut whys = Vec::new();
    let mut labels = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let old = before[i].as_ref();
        let cost: WriteCost = match error.as_deref() {
            None if t.action == "ConditionCheck" => {
                let mut c = rules::failed_write_cost(old, None, true);
                c.why = c.why.replace("condition failed", "condition check");
                c
            }
            // The write happened: a failed read now must not fail the request.
            None => match full_item(shared, request, &t.table, &t.key).await {
                Ok(new) => rules::write_cost(&t.schema, old, new.as_ref(), transactional),
                Err(err) => WriteCost {
                    table: 0,
                    indexes: 0,
                    why: format!("not priced: {err}"),
                },
            },
            Some("ConditionalCheckFailedException") => {
                rules::failed_write_cost(old, t.attempted.as_ref(), false)
            }
            Some("TransactionCanceledException") => {
                let mut c = rules::failed_write_cost(old, t.attempted.as_ref(), true);
                let reason = reasons.get(i).map_or("?", String::as_str);
                c.why = c
                    .why
                    .replace("condition failed", &format!("cancelled, {reason}"));
                c
            }
            Some(other) => WriteCost {
                table: 0,
                indexes: 0,
                why: format!("{other}: not billed"),
            },
        };
        units += cost.units();
        labels.push(t.label.clone());
        whys.push(format!("{}: {}", t.label, cost.why));
    }
    let outcome = match error.as_deref() {
        None => String::new(),
        Some("ConditionalCheckFailedException") => " (condition failed)".to_owned(),
        Some("TransactionCanceledException") => " (cancelled)".to_owned(),
        Some(other) => format!(" ({other})"),
    };
    let shape = match op {
        "PutItem" | "UpdateItem" | "DeleteItem" => {
            let label = labels.first().map_or("", String::as_str);
            // "Put ORG#/EVT#" -> "PutItem ORG#/EVT#"
            let rest = label.split_once(' ').map_or("", |(_, r)| r);
            format!("{op} {rest}{outcome}")
        }
        _ => {
            let mut distinct: Vec<(String, usize)> = Vec::new();
            for label in labels {
                match distinct.iter_mut().find(|(l, _)| *l == label) {
                    Some((_, n)) => *n += 1,
                    None => distinct.push((label, 1)),
                }
            }
            let parts: Vec<String> = distinct
                .into_iter()
                .map(|(l, n)| if n > 1 { format!("{l} x{n}") } else { l })
                .collect();
            format!("{op} [{}]{outcome}", parts.join(", "))
        }
    };
    let tables: Vec<&str> = {
        let mut t: Vec<&str> = targets.iter().map(|t| t.table.as_str()).collect();
        t.dedup();
        t
    };
    record_write(shared, op, &tables.join(","), shape, units, whys.join("; "));
    Ok(upstream)
}

fn record_write(shared: &Shared, op: &str, table: &str, shape: String, units: u64, why: String) {
    shared.record(Charge {
        service: Service::DynamoDb,
        operation: op.to_owned(),
        resource: table.to_owned(),
        shape,
        wru: units as f64,
        rru: 0.0,
        sqs_requests: 0,
        why,
    });
}

fn record_read(shared: &Shared, op: &str, table: &str, shape: String, rru: f64, why: String) {
    shared.record(Charge {
        service: Service::DynamoDb,
        operation: op.to_owned(),
        resource: table.to_owned(),
        shape,
        wru: 0.0,
        rru,
        sqs_requests: 0,
        why,
    });
}

/// `GetItem`, `BatchGetItem`, `TransactGetItems`: each item by its whole stored size.
async fn get(
    shared: &Shared,
    op: &str,
    request: &Forward,
    body: &Value,
) -> Result<Upstream, String> {
    let upstream = shared.forward(request).await?;
    if let Some(error) = upstream.error_type() {
        let why = format!("{error}: not billed");
        record_read(
            shared,
            op,
            &text(body, "TableName"),
            format!("{op} ({error})"),
            0.0,
            why,
        );
        return Ok(upstream);
    }
    // (table, key, consistent, multiplier)
    let mut reads: Vec<(String, Item, bool, f64)> = Vec::new();
    match op {
        "GetItem" => reads.push((
            text(body, "TableName"),
            object(body.get("Key")),
            body.get("ConsistentRead").and_then(Value::as_bool) == Some(true),
            1.0,
        )),
        "BatchGetItem" => {
            for (table, spec) in object(body.get("RequestItems")) {
                let consistent = spec.get("ConsistentRead").and_then(Value::as_bool) == Some(true);
                for key in spec
                    .get("Keys")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    reads.push((table.clone(), object(Some(key)), consistent, 1.0));
                }
            }
        }
        _ => {
            for item in body
                .get("TransactItems")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(spec) = item.get("Get") {
                    // Two underlying reads, each strongly consistent.
                    reads.push((text(spec, "TableName"), object(spec.get("Key")), true, 2.0));
                }
            }
        }
    }
    let answer = upstream.json();
    let narrowed =
        body.get("ProjectionExpression").is_some() || body.get("AttributesToGet").is_some();
    let mut rru = 0.0;
    let mut whys = Vec::new();
    let mut shapes = Vec::new();
    let mut tables = Vec::new();
    for (table, key, consistent, times) in reads {
        let schema = schema(shared, request, &table).await?;
        // A plain GetItem answers the whole item; otherwise read it to size it.
        let item = if op == "GetItem" && !narrowed {
            answer.get("Item").and_then(Value::as_object).cloned()
        } else {
            full_item(shared, request, &table, &key).await?
        };
        let (units, why) = rules::get_cost(item.as_ref().map(item_size), consistent);
        rru += units * times;
        let shape = format!(
            "{} {}{}",
            keys_shape(&schema, &key),
            if consistent { "consistent" } else { "eventual" },
            if item.is_none() { ", absent" } else { "" }
        );
        whys.push(format!(
            "{shape}: {why}{}",
            if times > 1.0 {
                ", x2 in a transaction"
            } else {
                ""
            }
        ));
        shapes.push(shape);
        if !tables.contains(&table) {
            tables.push(table);
        }
    }
    let shape = if op == "GetItem" {
        format!("GetItem {}", shapes.join(""))
    } else {
        format!("{op} [{}]", shapes.join(", "))
    };
    record_read(shared, op, &tables.join(","), shape, rru, whys.join("; "));
    Ok(upstream)
}

/// The `#names` and `:values` an expression refers to.
fn references(expression: &str) -> Vec<&str> {
    expression
        .split(|c: char| !(c.is_alphanumeric() || "_#:".contains(c)))
        .filter(|t| t.starts_with('#') || t.starts_with(':'))
        .collect()
}

/// `Query` and `Scan`: the items read, before any filter and whatever the projection,
/// per request (page).
async fn query(
    shared: &Shared,
    op: &str,
    request: &Forward,
    body: &Value,
) -> Result<Upstream, String> {
    let upstream = shared.forward(request).await?;
    let table = text(body, "TableName");
    if let Some(error) = upstream.error_type() {
        let why = format!("{error}: not billed");
        record_read(shared, op, &table, format!("{op} ({error})"), 0.0, why);
        return Ok(upstream);
    }
    let schema = schema(shared, request, &table).await?;
    let index_name = body.get("IndexName").and_then(Value::as_str);
    let narrowing = [
        "FilterExpression",
        "ProjectionExpression",
        "AttributesToGet",
        "Select",
        "QueryFilter",
        "ScanFilter",
        "ConditionalOperator",
    ];
    let narrowed = narrowing.iter().any(|f| body.get(*f).is_some());
    let items: Vec<Item> = if narrowed {
        // The same request (same start key and limit, so the same items evaluated)
        // without filter or projection, names and values pruned to what is left.
        let mut again = body.clone();
        if let Some(o) = again.as_object_mut() {
            for field in narrowing {
                o.remove(field);
            }
            let kept = references(
                body.get("KeyConditionExpression")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
            )
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
            for map in ["ExpressionAttributeNames", "ExpressionAttributeValues"] {
                if let Some(m) = o.get_mut(map).and_then(Value::as_object_mut) {
                    m.retain(|k, _| kept.contains(k));
                    if m.is_empty() {
                        o.remove(map);
                    }
                }
            }
        }
        answer_items(&call(shared, request, op, again).await?)
    } else {
        answer_items(&upstream.json())
    };
    let index = index_name.and_then(|name| schema.index(name));
    let sizes: Vec<u64> = items
        .iter()
        .map(|item| match index {
            Some(index) => index.entry(&schema.keys, item).map_or(0, |e| item_size(&e)),
            None => item_size(item),
        })
        .collect();
    let consistent = body.get("ConsistentRead").and_then(Value::as_bool) == Some(true);
    let (rru, why) = rules::query_cost(&sizes, consistent);
    let values = object(body.get("ExpressionAttributeValues"));
    let mut shape = format!("{op} {}", index_name.unwrap_or("table"));
    for token in references(
        body.get("KeyConditionExpression")
            .and_then(Value::as_str)
            .unwrap_or(""),
    ) {
        if let Some(v) = values.get(token) {
            shape.push(' ');
            shape.push_str(&key_shape(v));
        }
    }
    if let Some(limit) = body.get("Limit").and_then(Value::as_u64) {
        shape.push_str(&format!(" limit {limit}"));
    }
    if !consistent {
        shape.push_str(" eventual");
    }
    let why = if narrowed {
        format!("{why} (sized without filter/projection)")
    } else {
        why
    };
    record_read(shared, op, &table, shape, rru, why);
    Ok(upstream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_summaries_resolve_names_and_skip_values_and_functions() {
        let names = json!({"#c": "delivery_seq"})
            .as_object()
            .cloned()
            .expect("map");
        assert_eq!(update_summary("ADD #c :one", &names), "ADD delivery_seq");
        assert_eq!(
            update_summary(
                "SET endpoint_count = if_not_exists(endpoint_count, :zero) + :one, a = :a REMOVE b, #c",
                &names
            ),
            "SET endpoint_count, a REMOVE b, delivery_seq"
        );
    }

    #[test]
    fn references_find_names_and_values() {
        assert_eq!(
            references("#pk = :pk AND begins_with(sk, :p)"),
            ["#pk", ":pk", ":p"]
        );
    }
}
