//! The capacity meter on the real delivery path: scenarios a, b, c and d of docs/COST.md
//! with ten deliveries each, through `tests/meter` as `scripts/capacity.sh` runs them.
//! Asserts that the meter saw and priced every kind of request the path makes, and the
//! per-delivery budgets (`meter::checks`), so a change that spends more fails here.

#[path = "../meter/mod.rs"]
pub mod meter;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_stay_within_their_budgets() {
    let mut results = Vec::new();
    for scenario in meter::scenarios(10) {
        if scenario.id == "a'" {
            // The same requests as a; its figures are for docs/COST.md.
            continue;
        }
        let measured = meter::run(&scenario).await;
        println!("{}", measured.summary());
        for line in measured.breakdown() {
            println!("  {line:?}");
        }
        results.push(measured);
    }

    let a = &results[0];
    assert_eq!((a.scenario.id, a.scenario.subscribers), ("a", 1));
    let usage = a.usage();
    for operation in [
        "DynamoDB.GetItem",
        "DynamoDB.Query",
        "DynamoDB.PutItem",
        "DynamoDB.UpdateItem",
        "SQS.SendMessageBatch",
        "SQS.ReceiveMessage",
        "SQS.DeleteMessageBatch",
    ] {
        assert!(
            usage.calls(operation) > 0,
            "no {operation}: {:?}",
            usage.operations
        );
    }
    assert_eq!(
        usage.calls("DynamoDB.TransactWriteItems"),
        0,
        "no transaction on the delivery path"
    );
    assert_eq!(
        usage.calls("SQS.ReceiveMessage(empty)"),
        0,
        "no idle polling"
    );
    assert!(
        usage
            .log
            .iter()
            .all(|c| c.wru + c.rru > 0.0 || c.sqs_requests > 0),
        "every request priced: {:#?}",
        usage.log
    );
    assert_eq!(a.publish_calls, 10);
    let per = a.per_delivery();
    assert!(
        per.lambda_invocations > 0.0 && per.api_requests > 0.0,
        "{per:?}"
    );

    let checks = meter::checks(&results);
    for c in &checks {
        println!(
            "{}: {:.2} (target {:?}, ceiling {:?}) {}",
            c.figure, c.measured, c.target, c.ceiling, c.note
        );
    }
    assert_eq!(checks.len(), 17, "every budget checked: {checks:#?}");
    let broken: Vec<_> = checks.iter().filter(|c| !c.holds()).collect();
    assert!(broken.is_empty(), "over budget: {broken:#?}");
}
