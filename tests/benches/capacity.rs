//! What one delivery costs on AWS, measured: runs the capacity scenarios (`tests/meter`)
//! on moto through testkit's capacity meter and prints docs/COST.md (with `--out FILE`,
//! writes it there). `scripts/capacity.sh` starts moto and runs this.
//!
//! Arguments: `--deliveries N` (about N per scenario, default 100), `--out FILE` (cargo
//! runs benches in `tests/`: give an absolute path), `--only ID` (one scenario) and
//! `--log` (every request with how it was priced, on stderr), to look into one.

#[path = "../meter/mod.rs"]
mod meter;

use meter::{Measured, PerDelivery};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// us-east-1 list prices, USD, looked up on the date below (free tiers left out).
const PRICES_CHECKED: &str = "2026-11-27";
/// DynamoDB on-demand, per million write request units.
const WRU_PER_M: f64 = 0.625;
/// DynamoDB on-demand, per million read request units.
const RRU_PER_M: f64 = 0.125;
/// SQS standard queue, per million requests (first 100 billion a month).
const SQS_PER_M: f64 = 0.40;
/// Lambda, per million requests.
const LAMBDA_REQUESTS_PER_M: f64 = 0.20;
/// Lambda arm64, per GB-second (first 7.5 billion GB-seconds a month).
const LAMBDA_ARM_GB_S: f64 = 0.000_013_333_4;
/// API Gateway HTTP API, per million requests (first 300 million a month, per 512 KB).
const HTTP_API_PER_M: f64 = 1.00;
/// template.yaml, `Globals.Function.MemorySize` (every function; arm64).
const LAMBDA_MEMORY_GB: f64 = 256.0 / 1024.0;
/// Assumed durations on AWS (this machine's are on moto through the meter, which reads
/// every written item twice): a publish call of about seven DynamoDB/SQS round trips at
/// 5-10 ms, and a batch of 10 deliveries posted concurrently to receivers answering in
/// about 100 ms.
const PUBLISH_MS: f64 = 60.0;
const BATCH_MS: f64 = 250.0;

/// The figures the issue measured on the model before this one: (scenario, WRU, RRU,
/// SQS requests) per delivery.
const ISSUE_FIGURES: &[(&str, f64, f64, f64)] = &[
    ("a", 16.0, 4.0, 1.2),
    ("b", 12.4, 2.2, 0.3),
    ("c", 24.0, f64::NAN, f64::NAN),
];
/// The issue's retry increment (d − a): WRU, RRU, SQS requests.
const ISSUE_RETRY: (f64, f64, f64) = (11.0, 2.0, 1.0);

fn cost(per: &PerDelivery, duration_s_per_delivery: f64) -> Vec<(String, String, f64)> {
    let gb_s = LAMBDA_MEMORY_GB * duration_s_per_delivery;
    vec![
        (
            "DynamoDB writes".into(),
            format!("{:.2} WRU × ${WRU_PER_M}", per.wru),
            per.wru * WRU_PER_M,
        ),
        (
            "DynamoDB reads".into(),
            format!("{:.2} RRU × ${RRU_PER_M}", per.rru),
            per.rru * RRU_PER_M,
        ),
        (
            "SQS".into(),
            format!("{:.2} requests × ${SQS_PER_M:.2}", per.sqs_requests),
            per.sqs_requests * SQS_PER_M,
        ),
        (
            "Lambda requests".into(),
            format!(
                "{:.2} invocations × ${LAMBDA_REQUESTS_PER_M:.2}",
                per.lambda_invocations
            ),
            per.lambda_invocations * LAMBDA_REQUESTS_PER_M,
        ),
        (
            "Lambda duration".into(),
            format!(
                "{:.4} GB-s ({LAMBDA_MEMORY_GB} GB × {:.1} ms a delivery) × ${LAMBDA_ARM_GB_S} × 10⁶",
                gb_s,
                duration_s_per_delivery * 1000.0
            ),
            gb_s * LAMBDA_ARM_GB_S * 1e6,
        ),
        (
            "API Gateway".into(),
            format!("{:.2} requests × ${HTTP_API_PER_M:.2}", per.api_requests),
            per.api_requests * HTTP_API_PER_M,
        ),
    ]
}

fn assumed_seconds_per_delivery(m: &Measured) -> f64 {
    (m.publish_calls as f64 * PUBLISH_MS + m.batches as f64 * BATCH_MS)
        / 1000.0
        / m.scenario.deliveries as f64
}

fn ms(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1000.0 / n.max(1) as f64
}

fn git_revision() -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match run(&["rev-parse", "--short", "HEAD"]) {
        Some(rev) => {
            let dirty = run(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{rev} with uncommitted changes")
            } else {
                rev
            }
        }
        None => "an unknown revision".to_owned(),
    }
}

fn report(results: &[Measured], deliveries: usize, took: Duration) -> String {
    let mut md = String::new();
    let w = &mut md;
    let today = chrono::Utc::now().format("%Y-%m-%d");
    let _ = writeln!(w, "# What a delivery costs\n");
    let _ = writeln!(
        w,
        "Measured {today} on {} by `scripts/capacity.sh` (about {deliveries} deliveries per \
         scenario, {:.0} s); that command writes this file, so rerun it rather than edit it.\n",
        git_revision(),
        took.as_secs_f64()
    );
    let _ = writeln!(
        w,
        "## How\n\n\
         Each scenario runs the service's real parts on the moto emulator, every AWS request \
         through `testkit::capacity::CapacityMeter` (a proxy that prices each DynamoDB and SQS \
         request by AWS's documented on-demand rules: item sizes, 1 KB write and 4 KB read \
         units, index entries, transactions, failed conditions, 64 KB SQS chunks; the rules \
         and their sources are in `testkit/src/capacity/`): the API router publishing through \
         `lambda_http` requests built from `events/`, `DynamoStore` on a fresh table, \
         `SqsQueue` on a fresh queue, and the sender posting over HTTPS to a local receiver, \
         fed by a stand-in for the Lambda SQS poller (receive up to 10, `handle_sqs_batch`, one \
         `DeleteMessageBatch`). From the first publish call to every delivery's final \
         recorded state; one event per publish call; `data` is {} bytes: an alert (ids, \
         severity, service, host, labels, metrics, links, a description), or random base64 \
         in a'. The driver is `tests/meter/mod.rs`; `tests/it/capacity.rs` runs a, b, c and \
         d in the test suite. One reading of the rules to know: a transaction's table writes \
         count twice (prepare and commit, as AWS documents), the index writes it causes once \
         (AWS propagates them after the commit and documents no doubling); \
         `TRANSACTION_INDEX_FACTOR` in `testkit/src/capacity/rules.rs` changes that. The API \
         keys are in steady use: the write that records a key's last use, at most once per \
         key and hour (1 WRU), is not a per-delivery cost and is not in the figures.\n",
        meter::DATA_BYTES
    );

    let _ = writeln!(w, "## Per delivery\n");
    let _ = writeln!(
        w,
        "| Scenario | Deliveries | WRU | RRU | SQS requests | Lambda invocations | API Gateway requests |"
    );
    let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|");
    for m in results {
        let p = m.per_delivery();
        let _ = writeln!(
            w,
            "| {} {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            m.scenario.id,
            m.scenario.title,
            m.scenario.deliveries,
            p.wru,
            p.rru,
            p.sqs_requests,
            p.lambda_invocations,
            p.api_requests
        );
    }
    let find = |id: &str| results.iter().find(|m| m.scenario.id == id);
    if let (Some(a), Some(d)) = (find("a"), find("d")) {
        let (pa, pd) = (a.per_delivery(), d.per_delivery());
        let _ = writeln!(
            w,
            "| each retry (d − a) | | +{:.2} | +{:.2} | +{:.2} | +{:.2} | +{:.2} |",
            pd.wru - pa.wru,
            pd.rru - pa.rru,
            pd.sqs_requests - pa.sqs_requests,
            pd.lambda_invocations - pa.lambda_invocations,
            pd.api_requests - pa.api_requests
        );
    }
    let _ = writeln!(
        w,
        "\nLambda invocations are the publish calls plus the sender's batches; API Gateway \
         requests are the publish calls. SQS requests include the poller's receive and delete \
         per batch (it never polled an empty queue here; a real poller also long-polls an idle \
         queue, a cost per queue and hour, not per delivery).\n"
    );

    let _ = writeln!(w, "### Budgets\n");
    let _ = writeln!(
        w,
        "The targets per delivery, what was measured, and the ceiling \
         `tests/it/capacity.rs` asserts (`meter::checks`, on ten deliveries a scenario): the \
         target where it is met, the closest the model gets where meeting it would give up a \
         guarantee (DESIGN.md, \"Cost per delivery\", says which and why). A figure without a \
         ceiling is asserted through its parts.\n"
    );
    let _ = writeln!(
        w,
        "| Figure | Target | Measured | Asserted | |\n|---|---:|---:|---:|---|"
    );
    let le = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("≤ {v:.2}"));
    for c in meter::checks(results) {
        let _ = writeln!(
            w,
            "| {} | {} | {:.2} | {} | {} |",
            c.figure,
            le(c.target),
            c.measured,
            le(c.ceiling),
            if c.holds() {
                c.note.to_owned()
            } else {
                format!("**over the ceiling** {}", c.note)
            }
        );
    }
    let _ = writeln!(w, "\n### Against the storage model before this one\n");
    let _ = writeln!(
        w,
        "Measured the same way on the storage model before this one. Its +1 SQS request per retry is the \
         retry's `SendMessageBatch`; the meter adds the retry batch's share of the poller's \
         receive and delete (0.2).\n"
    );
    let _ = writeln!(w, "| Figure | Before | Measured |\n|---|---:|---:|");
    for (id, wru, rru, sqs) in ISSUE_FIGURES {
        let Some(m) = find(id) else { continue };
        let p = m.per_delivery();
        let _ = writeln!(w, "| {id}: WRU | {wru:.2} | {:.2} |", p.wru);
        if !rru.is_nan() {
            let _ = writeln!(w, "| {id}: RRU | {rru:.2} | {:.2} |", p.rru);
            let _ = writeln!(
                w,
                "| {id}: SQS requests | {sqs:.2} | {:.2} |",
                p.sqs_requests
            );
        }
    }
    if let (Some(a), Some(d)) = (find("a"), find("d")) {
        let (pa, pd) = (a.per_delivery(), d.per_delivery());
        let (iw, ir, is) = ISSUE_RETRY;
        let _ = writeln!(
            w,
            "| each retry: WRU | +{iw:.2} | +{:.2} |\n| each retry: RRU | +{ir:.2} | +{:.2} |\n| each retry: SQS requests | +{is:.2} | +{:.2} |",
            pd.wru - pa.wru,
            pd.rru - pa.rru,
            pd.sqs_requests - pa.sqs_requests
        );
    }
    let _ = writeln!(w, "\n## Which request spent what\n");
    let _ = writeln!(
        w,
        "Per delivery. A request is named by its operation, the constant part of the keys it \
         addressed (`ORG#/EP#`) and the attributes an update sets; `publish` is the API call, \
         `send` the poller and the sender.\n"
    );
    for m in results {
        let _ = writeln!(w, "### {} {}\n", m.scenario.id, m.scenario.title);
        let _ = writeln!(
            w,
            "| Phase | Request | Calls | WRU | RRU | SQS |\n|---|---|---:|---:|---:|---:|"
        );
        for line in m.breakdown() {
            let _ = writeln!(
                w,
                "| {} | `{}` | {:.2} | {:.2} | {:.2} | {:.2} |",
                line.phase,
                line.shape.replace('|', "\\|"),
                line.calls,
                line.wru,
                line.rru,
                line.sqs_requests
            );
        }
        let _ = writeln!(w);
    }

    let _ = writeln!(w, "## Price per million deliveries\n");
    let _ = writeln!(
        w,
        "us-east-1 list prices as published on {PRICES_CHECKED} (free tiers left out): \
         DynamoDB on-demand ${WRU_PER_M} per million write request units and ${RRU_PER_M} \
         per million read request units; SQS standard ${SQS_PER_M:.2} per million requests; \
         Lambda ${LAMBDA_REQUESTS_PER_M:.2} per million requests and ${LAMBDA_ARM_GB_S} per \
         GB-second on arm64; API Gateway HTTP API ${HTTP_API_PER_M:.2} per million requests. \
         Lambda: {} MB (template.yaml) and assumed durations of {PUBLISH_MS:.0} ms per publish \
         call and {BATCH_MS:.0} ms per batch of 10 (on this machine, on moto through the meter, \
         they took the times given with each total, an upper bound), so a delivery's share is \
         (publish calls × {PUBLISH_MS:.0} ms + batches × {BATCH_MS:.0} ms) / deliveries. \
         Per million deliveries, so the figures per delivery times the price per million:\n",
        LAMBDA_MEMORY_GB * 1024.0
    );
    for m in results {
        let p = m.per_delivery();
        let lines = cost(&p, assumed_seconds_per_delivery(m));
        let total: f64 = lines.iter().map(|(_, _, usd)| usd).sum();
        let _ = writeln!(
            w,
            "**{} {}**: ${total:.2} per million deliveries (measured here: {:.0} ms per publish \
             call, {:.0} ms per batch)\n",
            m.scenario.id,
            m.scenario.title,
            ms(m.publish_time, m.publish_calls),
            ms(m.batch_time, m.batches)
        );
        let _ = writeln!(w, "| Item | Arithmetic | USD |\n|---|---|---:|");
        for (item, arithmetic, usd) in &lines {
            let _ = writeln!(w, "| {item} | {arithmetic} | {usd:.2} |");
        }
        let _ = writeln!(w, "| **Total** | | **{total:.2}** |\n");
    }
    let _ = writeln!(
        w,
        "Anchors: Amazon SNS delivering to HTTP/S endpoints, about $1.10 per million \
         ($0.50 per million publishes + $0.60 per million HTTP/S deliveries); Amazon \
         EventBridge API destinations, about $1.20 per million ($1.00 per million events + \
         $0.20 per million invocations).\n\n\
         Not included: DynamoDB storage and point-in-time recovery (each delivery keeps its \
         event share, delivery, attempts and index entries for `RETENTION_DAYS`), data \
         transfer, CloudWatch Logs, the scheduler's run every minute (a query of the current \
         minute's due list: a fixed cost, plus one write per attempt it hands over, which \
         only waits over 15 minutes take), and an idle poller's empty receives."
    );
    md
}

fn main() {
    let mut deliveries = 100;
    let mut out = None;
    let mut only: Option<String> = None;
    let mut log = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--deliveries" => {
                deliveries = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--deliveries N");
            }
            "--out" => out = Some(args.next().expect("--out FILE")),
            "--only" => only = Some(args.next().expect("--only SCENARIO")),
            "--log" => log = true,
            // cargo bench passes `--bench`.
            "--bench" => {}
            other => {
                panic!("unknown argument {other:?} (--deliveries N, --out FILE, --only ID, --log)")
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let mut results = Vec::new();
    for scenario in meter::scenarios(deliveries)
        .into_iter()
        .filter(|s| only.as_deref().is_none_or(|id| id == s.id))
    {
        let measured = runtime.block_on(meter::run(&scenario));
        eprintln!("{}", measured.summary());
        if log {
            for charge in measured.usage().log {
                eprintln!(
                    "  {} {} wru={} rru={} sqs={}: {}",
                    charge.shape,
                    charge.resource,
                    charge.wru,
                    charge.rru,
                    charge.sqs_requests,
                    charge.why
                );
            }
        }
        results.push(measured);
    }
    let md = report(&results, deliveries, started.elapsed());
    match out {
        Some(path) => {
            std::fs::write(&path, &md).unwrap_or_else(|e| panic!("write {path}: {e}"));
            eprintln!("wrote {path}");
        }
        None => print!("{md}"),
    }
}
