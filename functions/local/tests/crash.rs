//! `webhooks-local --state FILE` killed (SIGKILL) at random moments while a client
//! publishes and the sender delivers (some attempts failing, so retries are due across
//! the kills), restarted on the same file each time, then run cleanly until everything
//! drained. Nothing accepted more than the save window before a kill is lost; nothing is
//! delivered that was never accepted; no (event, endpoint) gets two deliveries, however
//! often its publish is repeated; nothing is left pending.
//!
//! The choices (when each kill falls, which attempts the receiver fails, how long it
//! takes) are seeded: the seed is printed, and `AVW_CRASH_SEED=N` makes the same ones (the
//! machine's timing is not replayed). The figures (events lost and how long before their
//! kill they were accepted, duplicate POSTs) are printed; docs/DESIGN.md states them.

mod support;

use serde_json::{Value, json};
use shared::adapters::memory::state_file;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use support::{Server, ServerBuilder};
use testkit::{Behaviour, HttpsReceiver, RecordedRequest, Reply, TempDir};

const ADMIN: &str = "avk_crash_test_admin";
const API: &str = "/org/acme/webhooks";
/// Rounds ended by a kill, before the clean one.
const ROUNDS: usize = 8;
/// Clients publishing at once.
const PUBLISHERS: usize = 3;
/// Every event goes to this many endpoints.
const ENDPOINTS: usize = 2;
/// A kill falls this long after the server is ready, at the earliest and latest: from
/// the burst of restored jobs at start to well into a round's publishing.
const KILL_AFTER: (u64, u64) = (50, 1500);
/// The scheduling of a busy two-core machine running the clients, the receiver and the
/// server at once, beyond the saves themselves (see `window`).
const MARGIN: Duration = Duration::from_millis(150);
/// The allowance is never less than this: on a loaded CI machine a save can stall for
/// longer than the idle save measured here suggests, while a loss a whole second old is
/// no save window but a bug. The figures printed (and in DESIGN.md) are the measured ones.
const LEAST_WINDOW: Duration = Duration::from_secs(1);

/// splitmix64: small, seedable, enough to spread the choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// In `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn seed() -> u64 {
    std::env::var("AVW_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

/// What the receiver did with each delivery (by `webhook-id`).
#[derive(Default)]
struct Receipts {
    /// POSTs seen, and of those answered 2xx.
    seen: HashMap<String, (u32, u32)>,
}

/// A receiver that fails (500) about a third of a delivery's first two POSTs, so
/// retries are due across the kills but every delivery succeeds within the schedule,
/// and answers after 0–40 ms, so kills fall while deliveries are in flight.
fn flaky_receiver(seed: u64) -> (Behaviour, Arc<Mutex<Receipts>>) {
    let receipts = Arc::new(Mutex::new(Receipts::default()));
    let rng = Mutex::new(Rng(seed));
    let book = receipts.clone();
    let behaviour = Behaviour::from_fn(move |request: &RecordedRequest| {
        let id = request.header("webhook-id").unwrap_or_default().to_owned();
        let mut rng = lock(&rng);
        let mut book = lock(&book);
        let (seen, ok) = book.seen.entry(id).or_default();
        let fail = *seen < 2 && rng.chance(33);
        *seen += 1;
        *ok += u32::from(!fail);
        let reply = if fail {
            Reply::status(500)
        } else {
            Reply::ok()
        };
        reply.delay(Duration::from_millis(rng.between(0, 40)))
    });
    (behaviour, receipts)
}

/// The client's book: every id it sent, what was answered, what it must send again.
#[derive(Default)]
struct Ledger {
    /// The number of the next new event.
    next: usize,
    /// Sent without a 202 (no answer: the server was down or died mid-request; or
    /// `409 publish_in_progress`): sent again, same id, same content.
    again: VecDeque<String>,
    /// Answered 202: in which round (`ROUNDS` for the clean one) and when.
    accepted: HashMap<String, (usize, Instant)>,
    /// Publishes that got no answer (connection refused or cut by a kill).
    unanswered: usize,
    /// Of those, cut by a kill: sent, no answer.
    cut: usize,
    /// Publishes refused with `409 publish_in_progress`.
    in_progress: usize,
}

impl Ledger {
    /// The id to publish next: one to send again first, else a new one (unless `only_again`).
    fn take(&mut self, only_again: bool) -> Option<String> {
        if let Some(id) = self.again.pop_front() {
            return Some(id);
        }
        if only_again {
            return None;
        }
        self.next += 1;
        Some(format!("evt_crash_{:05}", self.next))
    }

    /// What a publish of `id` in `round` got: accepted now, or to be sent again.
    fn record(&mut self, id: String, outcome: &Outcome, round: usize) {
        match outcome {
            Outcome::Accepted => {
                self.accepted.insert(id, (round, Instant::now()));
                return;
            }
            Outcome::NoAnswer { refused } => {
                self.unanswered += 1;
                self.cut += usize::from(!refused);
            }
            Outcome::InProgress => self.in_progress += 1,
        }
        self.again.push_back(id);
    }
}

fn event(id: &str) -> Value {
    json!({"id": id, "type": "alert.fired", "data": {"id": id}})
}

enum Outcome {
    Accepted,
    NoAnswer { refused: bool },
    InProgress,
}

async fn publish(server: &Server, id: &str) -> Outcome {
    publish_through(server.http(), server, id).await
}

/// [`publish`] through `client`.
async fn publish_through(client: &reqwest::Client, server: &Server, id: &str) -> Outcome {
    let request = client
        .post(server.url(&format!("{API}/events")))
        .bearer_auth(ADMIN)
        .json(&event(id));
    match server.try_send(request).await {
        Ok((202, answer)) => {
            assert_eq!(answer["deliveries"], ENDPOINTS, "{id}: {answer}");
            Outcome::Accepted
        }
        Ok((409, answer)) if answer["error"]["code"] == "publish_in_progress" => {
            Outcome::InProgress
        }
        Ok((status, answer)) => panic!("publish {id}: {status} {answer}"),
        Err(e) => Outcome::NoAnswer {
            refused: e.is_connect(),
        },
    }
}

/// One client: publishes (an id to send again first, else a new one) until `stop`, or
/// until nothing is left to send again if `only_again`.
async fn publisher(
    server: &Server,
    ledger: &Mutex<Ledger>,
    round: usize,
    stop: &AtomicBool,
    only_again: bool,
    mut rng: Rng,
) {
    while !stop.load(Ordering::Acquire) {
        let Some(id) = lock(ledger).take(only_again) else {
            return;
        };
        let outcome = publish(server, &id).await;
        lock(ledger).record(id, &outcome, round);
        tokio::time::sleep(Duration::from_millis(rng.between(10, 50))).await;
    }
}

fn builder(state: &Path, ca: &Path) -> ServerBuilder {
    Server::builder()
        .key("acme", "admin", ADMIN)
        .root_cert(ca)
        .state(state)
        // Six attempts a second or two apart: the receiver fails at most two.
        .env("RETRY_SCHEDULE", "1,1,2,2,2")
        // Failures in a row must not pause an endpoint: deliveries would wait for a resume.
        .env("CIRCUIT_BREAKER_THRESHOLD", "1000")
        .kill_after(Duration::from_secs(60))
}

/// Every delivery of every endpoint, as listed (`DeliverySummary`).
async fn all_deliveries(server: &Server, endpoints: &[String]) -> Vec<Value> {
    let mut all = Vec::new();
    for endpoint in endpoints {
        for page in 1.. {
            let (status, listed) = server
                .get(&format!(
                    "{API}/endpoints/{endpoint}/deliveries?per_page=100&page={page}"
                ))
                .await;
            assert_eq!(status, 200, "{listed}");
            let items = listed["deliveries"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                break;
            }
            all.extend(items);
        }
    }
    all
}

/// Waits until every delivery listed has succeeded (the sender's retries done).
async fn drained(server: &Server, endpoints: &[String]) -> Vec<Value> {
    let give_up = Instant::now() + Duration::from_secs(40);
    loop {
        let all = all_deliveries(server, endpoints).await;
        let open: Vec<&Value> = all.iter().filter(|d| d["status"] != "succeeded").collect();
        if open.is_empty() {
            return all;
        }
        assert!(
            Instant::now() < give_up,
            "{} deliveries never succeeded, e.g. {}",
            open.len(),
            open[0]
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How long before a kill an accepted change may still be lost: the interval, plus the
/// save already under way when the change was made and the save that takes it in (each
/// copies, encodes, writes, flushes and renames the whole file), plus [`MARGIN`]. A
/// save is measured here, with the server's code, on the store as it is once
/// everything drained (the largest of the run); a save by a busy server takes longer,
/// hence three of them; at least [`LEAST_WINDOW`]. Also the measured save and the
/// file's size.
fn window(state: &Path, dir: &Path) -> (Duration, Duration, u64) {
    let saved = state_file::load(state)
        .expect("the state file")
        .expect("one exists");
    let copy = dir.join("save-cost.json");
    let started = Instant::now();
    state_file::save(&copy, &saved).expect("save a copy");
    let cost = started.elapsed();
    let size = std::fs::metadata(&copy).map_or(0, |m| m.len());
    let window = (webhooks_local::SAVE_EVERY + cost * 3 + MARGIN).max(LEAST_WINDOW);
    (window, cost, size)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_at_random_moments_lose_nothing_accepted_before_the_save_window() {
    let seed = seed();
    println!("crash test seed {seed} (AVW_CRASH_SEED={seed} makes the same choices)");
    let mut rng = Rng(seed);
    let (behaviour, receipts) = flaky_receiver(rng.next());
    let receiver = HttpsReceiver::start(behaviour).await;
    let dir = TempDir::new("crash");
    let ca = receiver.write_ca_pem(dir.path());
    let state = dir.path().join("state.json");

    // The endpoints, saved by a clean stop (created in a killed round, they could be
    // lost with its last moments).
    let server = builder(&state, &ca).start();
    let mut endpoints = Vec::new();
    for n in 0..ENDPOINTS {
        let created = server
            .create_endpoint("acme", &receiver.url(&format!("/hook/{n}")))
            .await;
        endpoints.push(created["id"].as_str().expect("id").to_owned());
    }
    assert!(server.terminate().0.success());

    let ledger = Mutex::new(Ledger::default());
    // Each round's start (before the process is spawned) and its kill.
    let mut rounds: Vec<(Instant, Instant)> = Vec::new();
    // Kills that fell in the 40 ms after a POST arrived at the receiver (its longest
    // answer), and that cut a publish short.
    let (mut mid_delivery, mut mid_publish) = (0, 0);
    for round in 0..ROUNDS {
        let started = Instant::now();
        let server = builder(&state, &ca).start();
        let stop = AtomicBool::new(false);
        let delay = Duration::from_millis(rng.between(KILL_AFTER.0, KILL_AFTER.1));
        let cut_before = lock(&ledger).cut;
        let clients = futures_util::future::join_all(
            (0..PUBLISHERS)
                .map(|_| publisher(&server, &ledger, round, &stop, false, Rng(rng.next()))),
        );
        let killer = async {
            tokio::time::sleep(delay).await;
            let killed = server.kill();
            stop.store(true, Ordering::Release);
            // Published while the server is down: refused, sent again after the restart.
            // A new connection: the client's pooled ones die with the server.
            let id = lock(&ledger).take(false).expect("a new id");
            let fresh = reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client");
            let outcome = publish_through(&fresh, &server, &id).await;
            assert!(
                matches!(outcome, Outcome::NoAnswer { refused: true }),
                "a publish to a killed server must be refused"
            );
            lock(&ledger).record(id, &outcome, round);
            killed
        };
        let (_, killed) = tokio::join!(clients, killer);
        if lock(&ledger).cut > cut_before {
            mid_publish += 1;
        }
        if receiver
            .requests()
            .iter()
            .any(|r| r.received_at <= killed && killed < r.received_at + Duration::from_millis(40))
        {
            mid_delivery += 1;
        }
        println!("round {round}: killed {delay:?} after the server was ready");
        rounds.push((started, killed));
    }

    // The clean run: the publishes never answered are sent again until accepted, then
    // every delivery is left to succeed.
    let clean_start = Instant::now();
    let server = builder(&state, &ca).start();
    let stop = AtomicBool::new(false);
    let give_up = async {
        tokio::time::sleep(Duration::from_secs(45)).await;
        stop.store(true, Ordering::Release);
    };
    let clients = futures_util::future::join_all(
        (0..PUBLISHERS).map(|_| publisher(&server, &ledger, ROUNDS, &stop, true, Rng(rng.next()))),
    );
    tokio::select! {
        _ = clients => {}
        _ = give_up => panic!("publishes still refused after 45 s: {:?}", lock(&ledger).again),
    }
    let deliveries = drained(&server, &endpoints).await;
    let (window, cost, size) = window(&state, dir.path());
    let book = std::mem::take(&mut *lock(&ledger));
    assert!(book.again.is_empty());

    // Each (event, endpoint): its deliveries.
    let mut by_target: BTreeMap<(String, String), Vec<&Value>> = BTreeMap::new();
    for d in &deliveries {
        let event = d["event_id"].as_str().expect("event_id").to_owned();
        let endpoint = d["endpoint_id"].as_str().expect("endpoint_id").to_owned();
        by_target.entry((event, endpoint)).or_default().push(d);
    }
    let twice: Vec<_> = by_target.iter().filter(|(_, ds)| ds.len() > 1).collect();
    assert!(
        twice.is_empty(),
        "two deliveries of one event to one endpoint: {twice:?}"
    );
    for d in &deliveries {
        let id = d["event_id"].as_str().unwrap_or_default();
        assert!(
            book.accepted.contains_key(id),
            "a delivery of {id}, never accepted: {d}"
        );
    }

    // Accepted and not (wholly) there: lost, which only the save window allows.
    let mut lost: Vec<(String, Duration)> = Vec::new();
    for (id, (round, at)) in &book.accepted {
        let complete = endpoints
            .iter()
            .all(|e| by_target.contains_key(&(id.clone(), e.clone())));
        if complete {
            continue;
        }
        let (_, kill) = rounds
            .get(*round)
            .unwrap_or_else(|| panic!("{id} was accepted in the clean run and is missing"));
        lost.push((id.clone(), kill.saturating_duration_since(*at)));
    }
    lost.sort_by_key(|(_, before)| *before);
    let max_lost = lost.last().map(|(_, before)| *before);
    for (id, before) in &lost {
        assert!(
            *before <= window,
            "{id} was accepted {before:?} before a kill and lost: past the save window ({window:?})"
        );
    }

    // What the receiver got: only accepted events; each stored delivery answered 2xx; a
    // POST of a delivery the store does not hold only from moments the window lost.
    let stored: HashSet<&str> = deliveries.iter().filter_map(|d| d["id"].as_str()).collect();
    let receipts = std::mem::take(&mut *lock(&receipts));
    for id in &stored {
        let (_, ok) = receipts.seen.get(*id).copied().unwrap_or_default();
        assert!(
            ok > 0,
            "delivery {id} succeeded but the receiver never answered it 2xx"
        );
    }
    let mut forgotten = Vec::new();
    for request in receiver.requests() {
        let body: Value = serde_json::from_slice(&request.body).expect("a JSON envelope");
        let event = body["id"].as_str().unwrap_or_default();
        assert!(
            book.accepted.contains_key(event),
            "{event} delivered, never accepted"
        );
        let webhook_id = request.header("webhook-id").unwrap_or_default();
        if stored.contains(webhook_id) {
            continue;
        }
        // Sent by the process of the last round started before it arrived (a POST sent
        // just before a kill may arrive just after it).
        let (_, kill) = rounds
            .iter()
            .rev()
            .find(|(started, _)| *started <= request.received_at)
            .unwrap_or_else(|| panic!("{webhook_id} ({event}) POSTed before the first round"));
        assert!(
            request.received_at < clean_start,
            "{webhook_id} ({event}) POSTed in the clean run and not stored"
        );
        let before = kill.saturating_duration_since(request.received_at);
        assert!(
            before <= window,
            "{webhook_id} ({event}) POSTed {before:?} before a kill and forgotten: past the save window"
        );
        forgotten.push((webhook_id.to_owned(), before));
    }
    // At least once: 2xx answers to a delivery after its first.
    let duplicate_posts: u32 = receipts
        .seen
        .values()
        .map(|(_, ok)| ok.saturating_sub(1))
        .sum();

    // A repeated id creates nothing: every accepted event not lost, published once more.
    let lost_ids: HashSet<&String> = lost.iter().map(|(id, _)| id).collect();
    let again: Vec<String> = book
        .accepted
        .keys()
        .filter(|id| !lost_ids.contains(id))
        .cloned()
        .collect();
    for chunk in again.chunks(again.len().div_ceil(PUBLISHERS).max(1)) {
        let server = &server;
        futures_util::future::join_all(chunk.iter().map(|id| async move {
            assert!(
                matches!(publish(server, id).await, Outcome::Accepted),
                "{id}"
            );
        }))
        .await;
    }
    let after = all_deliveries(&server, &endpoints).await;
    assert_eq!(
        after.len(),
        deliveries.len(),
        "a repeated publish made a delivery"
    );

    // A clean stop saves a file with nothing left to do.
    assert!(server.terminate().0.success());
    let saved: Value =
        serde_json::from_slice(&std::fs::read(&state).expect("state file")).expect("JSON");
    assert_eq!(
        saved["jobs"],
        json!([]),
        "jobs left after everything succeeded"
    );

    println!(
        "{ROUNDS} kills ({mid_delivery} mid-delivery, {mid_publish} mid-publish); {} events \
         accepted, {} deliveries, {} publishes unanswered and sent again, {} refused as in \
         progress; lost: {} (accepted at most {max_lost:?} before their kill; allowed \
         {window:?}); deliveries POSTed then forgotten: {}; duplicate POSTs: {duplicate_posts} \
         of {}; a save ({size} bytes, the largest) \
         took {cost:?}",
        book.accepted.len(),
        deliveries.len(),
        book.unanswered,
        book.in_progress,
        lost.len(),
        forgotten.len(),
        receiver.requests().len(),
    );
}
