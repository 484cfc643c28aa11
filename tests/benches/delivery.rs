//! Speed and memory of the delivery path, printed as figures (no assertions: these
//! machines are noisy; compare runs on one machine).
//!
//! 1. `sign()` of a 1 KiB envelope (both schemes), per call.
//! 2. Publish → sender → HTTPS receiver on loopback, end to end on the embedded store and
//!    queue with the real SSRF-guarded client: deliveries per second at 32 in flight.
//! 3. Peak resident memory of the whole run.

use shared::adapters::http_client::{OutboundClient, OutboundConfig};
use shared::adapters::memory::MemoryStore;
use shared::adapters::memory::queue::MemoryQueue;
use shared::domain::{Endpoint, NewEndpoint, OrgSlug, RetryPolicy, SigningSecret, now};
use shared::pipeline::{Audience, PublishRequest, Publisher, SenderSettings};
use shared::ports::EndpointStore;
use shared::wiring;
use std::sync::Arc;
use std::time::Instant;
use testkit::{Behaviour, HttpsReceiver, Reply};

const DELIVERIES: usize = 2_000;
const IN_FLIGHT: usize = 32;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn bench_signing() {
    let secret = SigningSecret::generate();
    let body = vec![b'x'; 1024];
    let rounds = 100_000u32;
    let start = Instant::now();
    for i in 0..rounds {
        let headers = shared::signing::sign(
            &secret,
            "01a21c04-b400-7000-8000-040000000001",
            i64::from(i),
            &body,
        )
        .expect("sign");
        std::hint::black_box(headers);
    }
    let per = start.elapsed() / rounds;
    println!("sign (both schemes, 1 KiB body): {per:?} per delivery attempt");
}

async fn bench_end_to_end() {
    let receiver = HttpsReceiver::start(Behaviour::always(Reply::ok())).await;
    let dir = std::env::temp_dir().join(format!("avw-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let ca = receiver.write_ca_pem(&dir);
    let store = Arc::new(MemoryStore::new());
    let (queue, mut jobs) = MemoryQueue::new();
    let queue = Arc::new(queue);
    let client = OutboundClient::new(OutboundConfig {
        allowed: vec!["127.0.0.0/8".parse().expect("cidr")],
        extra_root_certs: vec![ca],
        constrained_roots: Vec::new(),
        ..OutboundConfig::default()
    })
    .expect("client");
    let sender = Arc::new(wiring::sender(
        store.clone(),
        queue.clone(),
        Arc::new(client),
        SenderSettings {
            retry: RetryPolicy::default(),
            breaker_threshold: 20,
            user_agent: wiring::user_agent(),
            // The bench's own concurrency: the figures stay those of 32 in flight.
            endpoint_max_in_flight: IN_FLIGHT as u32,
        },
    ));
    let publisher = Publisher {
        endpoints: store.clone(),
        deliveries: store.clone(),
        events: store.clone(),
        queue: queue.clone(),
    };
    let org = OrgSlug::parse("bench").expect("slug");
    let number = store
        .allocate_endpoint_number()
        .await
        .expect("endpoint number");
    let endpoint = Endpoint::create(
        &org,
        NewEndpoint {
            url: receiver.url("/hook"),
            description: String::new(),
            event_types: vec!["bench.event".into()],
        },
        number,
        now(),
    );
    store
        .insert_endpoint(&endpoint, 100)
        .await
        .expect("endpoint");

    let start = Instant::now();
    for i in 0..DELIVERIES {
        let request = PublishRequest {
            id: Some(format!("evt_{i}")),
            event_type: "bench.event".into(),
            data: serde_json::json!({"i": i, "text": "x".repeat(512)}),
        };
        publisher
            .publish(&org, request, Audience::Subscribers)
            .await
            .expect("publish");
    }
    let published = start.elapsed();
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut handled = 0;
    let mut tasks = tokio::task::JoinSet::new();
    while handled < DELIVERIES {
        let job = jobs.recv().await;
        let permit = slots.clone().acquire_owned().await.expect("permit");
        let sender = sender.clone();
        tasks.spawn(async move {
            sender.handle(job, false).await.expect("handled");
            drop(permit);
        });
        handled += 1;
    }
    while tasks.join_next().await.is_some() {}
    let total = start.elapsed();
    assert_eq!(receiver.requests().len(), DELIVERIES);
    println!(
        "publish {DELIVERIES} events (1 subscriber each, ~0.6 KiB): {:.0} events/s",
        DELIVERIES as f64 / published.as_secs_f64()
    );
    println!(
        "publish + deliver over HTTPS on loopback, {IN_FLIGHT} in flight: {:.0} deliveries/s ({total:?} for {DELIVERIES})",
        DELIVERIES as f64 / total.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn main() {
    bench_signing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench_end_to_end());
    println!(
        "peak resident memory of the whole run: {} MiB",
        peak_rss_kib() / 1024
    );
}
