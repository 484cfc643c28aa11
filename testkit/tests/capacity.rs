//! The capacity meter against moto, with known answers: requests are sent as the AWS
//! SDK sends them (AWS JSON 1.0), straight to the meter, and each charge is checked
//! against the rule worked out by hand. Needs the moto server: run through
//! `scripts/test.sh` (it sets `AWS_ENDPOINT_URL`).

use serde_json::{Value, json};
use testkit::capacity::{CapacityMeter, Charge};

struct Aws {
    meter: CapacityMeter,
    http: reqwest::Client,
}

impl Aws {
    async fn start() -> Self {
        let moto = std::env::var("AWS_ENDPOINT_URL").expect(
            "AWS_ENDPOINT_URL is not set: run the tests with scripts/test.sh, which starts moto",
        );
        Self {
            meter: CapacityMeter::start(&moto).await,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
        }
    }

    /// One request through the meter: (HTTP status, JSON answer). Moto routes on the
    /// service named in the credential scope, as the SDK signs it.
    async fn send(&self, target: &str, body: Value) -> (u16, Value) {
        let service = if target.starts_with("AmazonSQS.") {
            "sqs"
        } else {
            "dynamodb"
        };
        let response = self
            .http
            .post(self.meter.endpoint_url())
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", target)
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=test/20261127/us-east-1/{service}/aws4_request, \
                     SignedHeaders=host, Signature=0"
                ),
            )
            .body(body.to_string())
            .send()
            .await
            .expect("send through the meter");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn dynamo(&self, op: &str, body: Value) -> (u16, Value) {
        self.send(&format!("DynamoDB_20120810.{op}"), body).await
    }

    async fn ok(&self, op: &str, body: Value) -> Value {
        let (status, answer) = self.dynamo(op, body).await;
        assert_eq!(status, 200, "{op}: {answer}");
        answer
    }

    /// The one charge recorded since the last call (and forget it).
    fn charge(&self) -> Charge {
        let usage = self.meter.take();
        assert_eq!(usage.log.len(), 1, "{:#?}", usage.log);
        usage.log.into_iter().next().expect("one charge")
    }
}

fn s(v: &str) -> Value {
    json!({ "S": v })
}

/// `pk`/`sk`, and two indexes like the service's: `by_group` (`gk`/`gs`, INCLUDE
/// `status`) and the sparse `due` (`dk`, ALL).
async fn table(aws: &Aws) -> String {
    let name = format!(
        "meter-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
    );
    let attribute = |n: &str| json!({"AttributeName": n, "AttributeType": "S"});
    aws.ok(
        "CreateTable",
        json!({
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [attribute("pk"), attribute("sk"), attribute("gk"),
                                     attribute("gs"), attribute("dk")],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                          {"AttributeName": "sk", "KeyType": "RANGE"}],
            "GlobalSecondaryIndexes": [
                {"IndexName": "by_group",
                 "KeySchema": [{"AttributeName": "gk", "KeyType": "HASH"},
                               {"AttributeName": "gs", "KeyType": "RANGE"}],
                 "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["status"]}},
                {"IndexName": "due",
                 "KeySchema": [{"AttributeName": "dk", "KeyType": "HASH"}],
                 "Projection": {"ProjectionType": "ALL"}}
            ]
        }),
    )
    .await;
    let usage = aws.meter.take();
    assert_eq!(usage.calls("DynamoDB.CreateTable"), 1);
    assert_eq!(usage.wru, 0.0, "control plane costs no capacity");
    name
}

/// pk "p1" (2 + 2) + sk "s1" (2 + 2) + gk "g" (2 + 1) + gs "1" (2 + 1) + status "new"
/// (6 + 3) + data 2000 x (4 + 2000) = 2027 bytes.
fn item_a(table: &str) -> Value {
    json!({"TableName": table, "Item": {
        "pk": s("p1"), "sk": s("s1"), "gk": s("g"), "gs": s("1"), "status": s("new"),
        "data": s(&"x".repeat(2000))
    }})
}

fn key(pk: &str, sk: &str) -> Value {
    json!({"pk": s(pk), "sk": s(sk)})
}

#[tokio::test]
async fn writes_are_sized_by_item_and_index_entry_per_started_kilobyte() {
    let aws = Aws::start().await;
    let t = table(&aws).await;

    // 2027 B -> 2 on the table; by_group entry pk + sk + gk + gs + status = 23 B -> 1; not
    // in `due` (no dk).
    aws.ok("PutItem", item_a(&t)).await;
    let c = aws.charge();
    assert_eq!((c.wru, c.rru), (3.0, 0.0), "{}", c.why);
    assert_eq!(c.operation, "PutItem");
    assert_eq!(c.resource, t);
    assert!(c.why.contains("2027 B after"), "{}", c.why);
    assert!(c.why.contains("by_group 1 enters (23 B)"), "{}", c.why);

    // Updates of the item, in turn: each costs the table 2 and the indexes 2 more; what
    // its reasons say, and its shape where that is the point.
    let updates = [
        // Moving the by_group sort key: the index a delete and a put (+2).
        (
            json!({"UpdateExpression": "SET gs = :gs", "ExpressionAttributeValues": {":gs": s("2")}}),
            &["key changed"][..],
            Some("UpdateItem */* [SET gs]"),
        ),
        // Entering the sparse ALL index: the whole item (2027 + dk 3 = 2030 B) -> 2 there;
        // by_group does not project dk: unchanged.
        (
            json!({"UpdateExpression": "SET dk = :d", "ExpressionAttributeValues": {":d": s("d")}}),
            &["due 2 enters (2030 B)", "by_group 0 unchanged"][..],
            None,
        ),
        // An attribute only `due` projects: due 2 (projection changed), by_group 0.
        (
            json!({"UpdateExpression": "SET #d = :d",
                   "ExpressionAttributeNames": {"#d": "data"},
                   "ExpressionAttributeValues": {":d": s(&"y".repeat(2000))}}),
            &[][..],
            Some("UpdateItem */* [SET data]"),
        ),
        // Leaving `due` (REMOVE dk): due 2 (the old entry, 2030 B).
        (
            json!({"UpdateExpression": "REMOVE dk"}),
            &["due 2 leaves (2030 B)"][..],
            None,
        ),
    ];
    for (update, reasons, shape) in updates {
        let mut body = json!({"TableName": t, "Key": key("p1", "s1")});
        let fields = update.as_object().expect("an object").clone();
        body.as_object_mut().expect("an object").extend(fields);
        aws.ok("UpdateItem", body).await;
        let c = aws.charge();
        assert_eq!(c.wru, 4.0, "{update}: {}", c.why);
        for reason in reasons {
            assert!(c.why.contains(reason), "{}", c.why);
        }
        if let Some(shape) = shape {
            assert_eq!(c.shape, shape);
        }
    }

    // Deleting: the item's size (2027 B -> 2) and its by_group entry (1).
    aws.ok(
        "DeleteItem",
        json!({"TableName": t, "Key": key("p1", "s1")}),
    )
    .await;
    let c = aws.charge();
    assert_eq!(c.wru, 3.0, "{}", c.why);
}

#[tokio::test]
async fn transactions_double_the_table_writes_and_failed_conditions_still_cost() {
    let aws = Aws::start().await;
    let t = table(&aws).await;
    aws.ok("PutItem", item_a(&t)).await;
    aws.meter.reset();

    // Update p1 (status is projected in by_group: 1; table 2 x 2) and put a small new
    // item (pk 4 + sk 4 + v 2 = 10 B: 1 x 2).
    aws.ok(
        "TransactWriteItems",
        json!({"TransactItems": [
            {"Update": {"TableName": t, "Key": key("p1", "s1"),
                        "UpdateExpression": "SET #s = :s",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {":s": s("old")}}},
            {"Put": {"TableName": t, "Item": {"pk": s("p2"), "sk": s("s2"), "v": {"N": "1"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}}
        ]}),
    )
    .await;
    let c = aws.charge();
    assert_eq!(c.wru, 4.0 + 1.0 + 2.0, "{}", c.why);
    assert_eq!(
        c.shape,
        "TransactWriteItems [Update */* [SET status], Put */*]"
    );

    // A failed condition on an existing 2027 B item: 2; on an absent item: 1.
    let mut again = item_a(&t);
    again["ConditionExpression"] = json!("attribute_not_exists(pk)");
    let (status, answer) = aws.dynamo("PutItem", again).await;
    assert_eq!(status, 400, "{answer}");
    let c = aws.charge();
    assert_eq!(c.wru, 2.0, "{}", c.why);
    assert_eq!(c.shape, "PutItem */* (condition failed)");

    let (status, _) = aws
        .dynamo(
            "UpdateItem",
            json!({"TableName": t, "Key": key("nope", "nope"),
                   "UpdateExpression": "SET v = :v", "ConditionExpression": "attribute_exists(pk)",
                   "ExpressionAttributeValues": {":v": {"N": "1"}}}),
        )
        .await;
    assert_eq!(status, 400);
    let c = aws.charge();
    assert_eq!(c.wru, 1.0, "{}", c.why);

    // A cancelled transaction: every item prepared, twice, by its existing size: the
    // failing check on p1 (2 x 2) and the put of an absent item (1 x 2). Nothing written.
    let (status, answer) = aws
        .dynamo(
            "TransactWriteItems",
            json!({"TransactItems": [
                {"ConditionCheck": {"TableName": t, "Key": key("p1", "s1"),
                                    "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": t, "Item": {"pk": s("p4"), "sk": s("s4")}}}
            ]}),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    let c = aws.charge();
    assert_eq!(c.wru, 6.0, "{}", c.why);
    assert!(c.shape.ends_with("(cancelled)"), "{}", c.shape);
    let absent = aws
        .ok(
            "GetItem",
            json!({"TableName": t, "Key": key("p4", "s4"), "ConsistentRead": true}),
        )
        .await;
    assert!(
        absent.get("Item").is_none(),
        "the cancelled put wrote nothing"
    );
}

#[tokio::test]
async fn reads_are_sized_by_what_they_read_not_what_they_return() {
    let aws = Aws::start().await;
    let t = table(&aws).await;
    // Five items in one partition, each pk 3 + sk 3 + gk 3 + gs 3 + status 9 + data 1504
    // = 1525 B: 7625 B together.
    for i in 1..=5 {
        aws.ok(
            "PutItem",
            json!({"TableName": t, "Item": {
                "pk": s("q"), "sk": s(&i.to_string()), "gk": s("g"), "gs": s(&i.to_string()),
                "status": s("new"), "data": s(&"z".repeat(1500))
            }}),
        )
        .await;
    }
    aws.meter.reset();

    // An absent item: 1 unit consistent, half of it eventually consistent.
    aws.ok(
        "GetItem",
        json!({"TableName": t, "Key": key("none", "none"), "ConsistentRead": true}),
    )
    .await;
    assert_eq!(aws.charge().rru, 1.0);
    aws.ok(
        "GetItem",
        json!({"TableName": t, "Key": key("none", "none")}),
    )
    .await;
    let c = aws.charge();
    assert_eq!(c.rru, 0.5);
    assert_eq!(c.shape, "GetItem */* eventual, absent");

    // A projection reads the whole item all the same: 1525 B -> 1 unit.
    aws.ok(
        "GetItem",
        json!({"TableName": t, "Key": key("q", "1"), "ConsistentRead": true,
               "ProjectionExpression": "sk"}),
    )
    .await;
    assert_eq!(aws.charge().rru, 1.0);

    // The query reads 7625 B -> 2 units, eventually consistent: 1; a filter that keeps
    // nothing and a projection change nothing; consistent: 2.
    let query = json!({"TableName": t, "KeyConditionExpression": "pk = :pk",
                       "ExpressionAttributeValues": {":pk": s("q")}});
    aws.ok("Query", query.clone()).await;
    let c = aws.charge();
    assert_eq!(c.rru, 1.0, "{}", c.why);
    assert!(c.why.contains("5 item(s) read, 7625 B"), "{}", c.why);
    let mut filtered = query.clone();
    filtered["FilterExpression"] = json!("#st = :done");
    filtered["ExpressionAttributeNames"] = json!({"#st": "status"});
    filtered["ExpressionAttributeValues"][":done"] = s("done");
    filtered["ProjectionExpression"] = json!("sk");
    let answer = aws.ok("Query", filtered).await;
    assert_eq!(answer["Count"], 0, "the filter kept nothing");
    assert_eq!(aws.charge().rru, 1.0);
    let mut consistent = query.clone();
    consistent["ConsistentRead"] = json!(true);
    aws.ok("Query", consistent).await;
    assert_eq!(aws.charge().rru, 2.0);

    // With a limit, only the items evaluated: 2 x 1525 B -> 1 unit, half.
    let mut limited = query.clone();
    limited["Limit"] = json!(2);
    aws.ok("Query", limited).await;
    let c = aws.charge();
    assert_eq!(c.rru, 0.5, "{}", c.why);
    assert_eq!(c.shape, "Query table * limit 2 eventual");

    // On the index, the entries (pk, sk, gk, gs, status: 21 B each): 1 unit, half.
    aws.ok(
        "Query",
        json!({"TableName": t, "IndexName": "by_group", "KeyConditionExpression": "gk = :g",
               "ExpressionAttributeValues": {":g": s("g")}}),
    )
    .await;
    let c = aws.charge();
    assert_eq!(c.rru, 0.5, "{}", c.why);
    assert!(c.why.contains("5 item(s) read, 105 B"), "{}", c.why);

    // A transactional read: two consistent reads per item.
    aws.ok(
        "TransactGetItems",
        json!({"TransactItems": [{"Get": {"TableName": t, "Key": key("q", "1")}},
                                 {"Get": {"TableName": t, "Key": key("q", "2")}}]}),
    )
    .await;
    assert_eq!(aws.charge().rru, 4.0);
}

#[tokio::test]
async fn sqs_counts_requests_and_64_kb_chunks_of_payload() {
    let aws = Aws::start().await;
    let (status, answer) = aws
        .send(
            "AmazonSQS.CreateQueue",
            json!({"QueueName": format!("meter-{}", std::process::id())}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let url = answer["QueueUrl"].as_str().expect("url").to_owned();
    aws.meter.reset();

    let entries: Vec<Value> = (0..3)
        .map(|i| json!({"Id": i.to_string(), "MessageBody": "small"}))
        .collect();
    aws.send(
        "AmazonSQS.SendMessageBatch",
        json!({"QueueUrl": url, "Entries": entries}),
    )
    .await;
    let c = aws.charge();
    assert_eq!(
        (c.operation.as_str(), c.sqs_requests),
        ("SendMessageBatch", 1)
    );

    // 100 KB: two 64 KB chunks, to send and to receive.
    aws.send(
        "AmazonSQS.SendMessage",
        json!({"QueueUrl": url, "MessageBody": "m".repeat(100 * 1024)}),
    )
    .await;
    assert_eq!(aws.charge().sqs_requests, 2);
    let (_, received) = aws
        .send(
            "AmazonSQS.ReceiveMessage",
            json!({"QueueUrl": url, "MaxNumberOfMessages": 10}),
        )
        .await;
    let messages = received["Messages"].as_array().expect("messages").clone();
    assert_eq!(messages.len(), 4);
    let c = aws.charge();
    assert_eq!(c.sqs_requests, 2, "{}", c.why);

    let handles: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| json!({"Id": i.to_string(), "ReceiptHandle": m["ReceiptHandle"]}))
        .collect();
    aws.send(
        "AmazonSQS.DeleteMessageBatch",
        json!({"QueueUrl": url, "Entries": handles}),
    )
    .await;
    assert_eq!(aws.charge().sqs_requests, 1);

    aws.send(
        "AmazonSQS.ReceiveMessage",
        json!({"QueueUrl": url, "MaxNumberOfMessages": 10}),
    )
    .await;
    let usage = aws.meter.snapshot();
    assert_eq!(usage.calls("SQS.ReceiveMessage(empty)"), 1);
    assert_eq!(usage.sqs_requests, 1);
}
