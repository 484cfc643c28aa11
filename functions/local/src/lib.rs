//! The local server: every route family on one listener, on the embedded store, from the
//! same handler code the Lambdas run.

pub mod dev_ca;
mod json_errors;
pub mod listen;

use axum::Router;
use clap::Parser;
use console::FrameAncestors;
use dev_ca::DevCa;
use ipnet::IpNet;
use json_errors::JsonErrorsListener;
use shared::adapters::http_client::{OutboundBuildError, OutboundClient};
use shared::adapters::memory::MemoryStore;
use shared::adapters::memory::queue::MemoryQueue;
use shared::adapters::memory::state_file::{self, SavedState, StateFileError};
use shared::config::{self, ConfigError, Env};
use shared::domain::Job;
use shared::domain::{KeyHash, Retention, Role};
use shared::keys::{self, KeyError};
use shared::pipeline::Sender;
use shared::pipeline::scheduler::run_now;
use shared::ports::KeyStore;
use shared::wiring::{self, Services};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use thiserror::Error;
use tokio::net::TcpListener;

/// The command line: the server's flags, or `listen` and its own.
#[derive(Debug, Parser)]
#[command(
    name = "webhooks-local",
    version,
    about = "Run AgentVista Webhooks locally, in memory",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(flatten)]
    pub server: Options,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Receive this server's deliveries on your machine: an HTTPS receiver it trusts,
    /// an endpoint registered for it, every delivery verified and printed, optionally
    /// forwarded to your app.
    Listen(listen::ListenOptions),
}

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Register an API key, as ORG:ROLE:KEY (repeatable). Without any, org `demo` gets a
    /// random admin key, printed at start.
    #[arg(long = "key", value_name = "ORG:ROLE:KEY", value_parser = parse_key_spec)]
    pub keys: Vec<KeySpec>,
    /// Address range the sender may reach despite the SSRF rules (repeatable; `none`
    /// allows nothing). Default: loopback only.
    #[arg(long = "allow-target", value_name = "CIDR")]
    pub allow_targets: Vec<String>,
    /// Extra PEM root certificate the sender trusts (repeatable).
    #[arg(long = "root-cert", value_name = "PATH")]
    pub root_certs: Vec<PathBuf>,
    /// Keep the store in this file across restarts (loaded at start if it exists, saved
    /// within 0.2 s of each change and at exit). Without it, everything is in memory.
    #[arg(long = "state", value_name = "FILE")]
    pub state: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct KeySpec {
    pub org: String,
    pub role: Role,
    pub key: String,
}

fn parse_key_spec(raw: &str) -> Result<KeySpec, String> {
    let mut parts = raw.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(org), Some(role), Some(key)) if !key.is_empty() => Ok(KeySpec {
            org: org.to_owned(),
            role: role.parse()?,
            key: key.to_owned(),
        }),
        _ => Err("expected ORG:ROLE:KEY, e.g. demo:admin:avk_local_admin".into()),
    }
}

#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("--key {org}: {source}")]
    Key { org: String, source: KeyError },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Client(#[from] OutboundBuildError),
    #[error(transparent)]
    State(#[from] StateFileError),
    #[error(transparent)]
    Console(#[from] console::BadFrameAncestor),
    #[error("--state: {0}")]
    Restore(String),
    #[error("--key {org}: that key is in the state file for another organisation or role")]
    KeyConflict { org: String },
}

/// Everything the process runs with, resolved from flags and environment.
pub struct LocalServer {
    pub router: Router,
    /// The in-process sender and the queue it reads due jobs from.
    pub sender: Arc<Sender>,
    jobs: tokio::sync::mpsc::UnboundedReceiver<Job>,
    store: Arc<MemoryStore>,
    queue: Arc<MemoryQueue>,
    /// Set when no `--key` was given: the random admin key of org `demo`.
    pub demo_admin_key: Option<String>,
    pub allowed_targets: Vec<IpNet>,
    pub root_certs: Vec<PathBuf>,
    /// The development CA's certificate (`webhooks-local listen`'s receivers), trusted
    /// besides `root_certs`; or why it is not.
    pub dev_ca: Result<PathBuf, String>,
    /// Where the store is kept (`--state`), and what was loaded from it.
    pub state: Option<(PathBuf, Loaded)>,
}

/// What `--state FILE` held at start (`None`: no file yet).
pub type Loaded = Option<LoadedCounts>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadedCounts {
    pub endpoints: usize,
    pub deliveries: usize,
    pub jobs: usize,
}

fn loopback() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect()
}

impl LocalServer {
    /// Resolve settings (flags win over `ALLOWED_TARGET_CIDRS` and `EXTRA_ROOT_CERTS`),
    /// register keys and build the router on a fresh embedded store.
    pub async fn prepare(options: Options, env: &impl Env) -> Result<Self, StartError> {
        let allowed_targets = if !options.allow_targets.is_empty() {
            config::parse_cidrs("--allow-target", &options.allow_targets)?
        } else if env.get("ALLOWED_TARGET_CIDRS").is_some() {
            config::allowed_target_cidrs(env)?
        } else {
            loopback()
        };
        let root_certs = if options.root_certs.is_empty() {
            config::extra_root_certs(env)?
        } else {
            options
                .root_certs
                .iter()
                .map(|p| config::check_root_cert("--root-cert", p))
                .collect::<Result<_, _>>()?
        };

        let dev_ca = dev_ca::cache_dir(|name| env.get(name))
            .ok_or_else(|| "no cache directory (set XDG_CACHE_HOME or HOME)".to_owned())
            .and_then(|dir| DevCa::find_or_create(&dir).map_err(|e| e.to_string()))
            .map(|ca| ca.cert_path());

        let saved = match &options.state {
            Some(path) => state_file::load(path)?,
            None => None,
        };
        let loaded: Loaded = saved.as_ref().map(|s| LoadedCounts {
            endpoints: s.store.endpoints.len(),
            deliveries: s.store.deliveries.len(),
            jobs: s.jobs.len(),
        });
        let (contents, saved_jobs) = saved.map(|s| (s.store, s.jobs)).unwrap_or_default();
        let store = Arc::new(
            MemoryStore::with_contents(contents)
                .map_err(|e| StartError::Restore(e.to_string()))?
                .with_retention(Retention::days(config::retention_days(env)?)),
        );
        let mut demo_admin_key = None;
        if options.keys.is_empty() {
            let (key, _) = keys::mint(store.as_ref(), "demo", Role::Admin, None)
                .await
                .map_err(|source| StartError::Key {
                    org: "demo".into(),
                    source,
                })?;
            demo_admin_key = Some(key);
        }
        for spec in options.keys {
            register_key(store.as_ref(), spec).await?;
        }

        let (queue, jobs) = MemoryQueue::kept();
        queue
            .restore(saved_jobs)
            .await
            .map_err(|e| StartError::Restore(e.to_string()))?;
        let queue = Arc::new(queue);
        let frame_ancestors = FrameAncestors::parse(env.get("CONSOLE_FRAME_ANCESTORS").as_deref())?;
        let router = shared::api::finish(
            Services::new(store.clone(), queue.clone())
                .routes()
                .merge(console::routes(frame_ancestors)),
        );
        let mut outbound =
            wiring::outbound_config(env, allowed_targets.clone(), root_certs.clone())?;
        // A root only, never pinned: its name constraints (loopback) must hold.
        outbound.constrained_roots = dev_ca.iter().cloned().collect();
        let client = OutboundClient::new(outbound)?;
        let sender = Arc::new(wiring::sender(
            store.clone(),
            queue.clone(),
            Arc::new(client),
            wiring::sender_settings(env)?,
        ));
        Ok(Self {
            router,
            sender,
            jobs,
            store,
            queue,
            demo_admin_key,
            allowed_targets,
            root_certs,
            dev_ca,
            state: options.state.map(|path| (path, loaded)),
        })
    }
}

/// Register a `--key`; one the state file already holds for the same organisation and
/// role is kept as it is.
async fn register_key(store: &MemoryStore, spec: KeySpec) -> Result<(), StartError> {
    match keys::mint(store, &spec.org, spec.role, Some(spec.key.clone())).await {
        Ok(_) => Ok(()),
        Err(KeyError::AlreadyRegistered) => {
            let held = store
                .find_key(&KeyHash::of(&spec.key))
                .await
                .map_err(|e| StartError::Restore(e.to_string()))?;
            match held {
                Some(k) if k.org == spec.org && k.role == spec.role => Ok(()),
                _ => Err(StartError::KeyConflict { org: spec.org }),
            }
        }
        Err(source) => Err(StartError::Key {
            org: spec.org,
            source,
        }),
    }
}

/// Bind, print `listening on http://ADDR` (first line on stdout, once ready), then serve
/// until SIGINT or SIGTERM.
pub async fn run(options: Options, env: &impl Env) -> Result<(), StartError> {
    let requested = options.listen;
    let server = LocalServer::prepare(options, env).await?;
    if let Some((path, _)) = &server.state {
        // Saved once before anything is served: a file that cannot be written stops
        // start-up instead of failing at exit.
        state_file::save(path, &saved_state(&server.store, &server.queue))?;
    }
    let listener = TcpListener::bind(requested)
        .await
        .map_err(|source| StartError::Listen {
            addr: requested,
            source,
        })?;
    let addr = listener.local_addr().map_err(StartError::Serve)?;

    let mut out = std::io::stdout().lock();
    let targets = if server.allowed_targets.is_empty() {
        "none".to_owned()
    } else {
        let list: Vec<String> = server
            .allowed_targets
            .iter()
            .map(ToString::to_string)
            .collect();
        list.join(", ")
    };
    // Best effort: a closed stdout must not stop the server.
    let _ = writeln!(out, "listening on http://{addr}");
    let _ = match &server.state {
        None => writeln!(
            out,
            "store: in memory (everything is lost when this process exits)"
        ),
        Some((path, loaded)) => writeln!(
            out,
            "store: in memory, kept in {} ({}; saved within {} ms of each change and at exit)",
            path.display(),
            match loaded {
                Some(n) => format!(
                    "loaded {} endpoints, {} deliveries, {} jobs to do",
                    n.endpoints, n.deliveries, n.jobs
                ),
                None => "a new file".to_owned(),
            },
            SAVE_EVERY.as_millis()
        ),
    };
    let _ = writeln!(out, "sender may reach: {targets}");
    for cert in &server.root_certs {
        let _ = writeln!(out, "extra root certificate: {}", cert.display());
    }
    if let Some(key) = &server.demo_admin_key {
        let _ = writeln!(out, "org demo, admin key: {key}");
    }
    let _ = writeln!(
        out,
        "console: http://{addr}{} (sign in with an API key)",
        console::CONSOLE_PATH
    );

    let retry: Vec<String> = server
        .sender
        .settings
        .retry
        .delays
        .iter()
        .map(|d| d.as_secs().to_string())
        .collect();
    let _ = writeln!(
        out,
        "sender: in process; retry schedule {}s; circuit breaker after {} failures",
        retry.join(","),
        server.sender.settings.breaker_threshold
    );
    match &server.dev_ca {
        Ok(path) => {
            let _ = writeln!(
                out,
                "trusts the local development CA (webhooks-local listen): {}",
                path.display()
            );
        }
        Err(why) => {
            let _ = writeln!(out, "no local development CA: {why}");
        }
    }
    let _ = out.flush();
    drop(out);

    let workers = tokio::spawn(run_worker(
        server.sender.clone(),
        server.queue.clone(),
        server.jobs,
    ));
    let scheduler = tokio::spawn(run_scheduler(server.store.clone(), server.queue.clone()));
    let (stop_saving, stopped) = tokio::sync::watch::channel(false);
    let saver = server.state.as_ref().map(|(path, _)| {
        tokio::spawn(keep_saving(
            path.clone(),
            server.store.clone(),
            server.queue.clone(),
            stopped,
        ))
    });
    let served = axum::serve(JsonErrorsListener(listener), server.router)
        .with_graceful_shutdown(shutdown_signal())
        .await;
    workers.abort();
    scheduler.abort();
    if let Some(saver) = saver {
        // The saver finishes a save in progress, then saves once more and stops. Jobs
        // being handled stay outstanding: they are done again after a restart.
        let _ = stop_saving.send(true);
        saver
            .await
            .map_err(|e| StartError::Restore(format!("saving at exit: {e}")))??;
    }
    served.map_err(StartError::Serve)?;
    tracing::info!("stopped");
    Ok(())
}

/// Jobs at most in flight at once, as a Lambda's concurrency would bound them.
const WORKER_CONCURRENCY: usize = 32;

/// How long a job whose handling failed waits before it is handled again.
const REDELIVERY_PAUSE: std::time::Duration = std::time::Duration::from_secs(5);
/// Handlings of one job at most, as the queue's `maxReceiveCount` in AWS.
const MAX_RECEIVES: u32 = 5;

/// The local stand-in for the sender Lambda: every due job, handled concurrently. A job
/// whose handling failed is handed out again after a pause, marked as seen before, as
/// SQS would after its visibility timeout, and given up after `MAX_RECEIVES` (SQS would
/// move it to the dead-letter queue).
async fn run_worker(
    sender: Arc<Sender>,
    queue: Arc<MemoryQueue>,
    mut jobs: tokio::sync::mpsc::UnboundedReceiver<Job>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(WORKER_CONCURRENCY));
    while let Some(job) = jobs.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let sender = sender.clone();
        let queue = queue.clone();
        tokio::spawn(async move {
            for receive in 1..=MAX_RECEIVES {
                match sender.handle(job.clone(), receive > 1).await {
                    Ok(_) => break,
                    Err(err) if receive < MAX_RECEIVES => {
                        tracing::warn!(error = %err, "job failed; handling it again in 5 s");
                        tokio::time::sleep(REDELIVERY_PAUSE).await;
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "job failed {MAX_RECEIVES} times; given up")
                    }
                }
            }
            queue.done(&job);
            drop(slot);
        });
    }
}

/// How often `--state` is saved when something changed.
const SAVE_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// The store and the jobs to do, copied at one moment.
fn saved_state(store: &MemoryStore, queue: &MemoryQueue) -> SavedState {
    let (jobs, store) = queue.outstanding_with(|| store.contents());
    SavedState { store, jobs }
}

/// Save the store and the jobs to do whenever either changed, at most every
/// [`SAVE_EVERY`], until `stop` turns true; then once more, the last word. One task does
/// every save, so two never write the file at once. A failed save is logged and tried
/// again at the next change (the last one's error is returned).
async fn keep_saving(
    path: PathBuf,
    store: Arc<MemoryStore>,
    queue: Arc<MemoryQueue>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), StateFileError> {
    let mut every = tokio::time::interval(SAVE_EVERY);
    // `run` saved just before this started.
    let mut saved = (store.changes(), queue.changes());
    loop {
        let last = tokio::select! {
            _ = every.tick() => false,
            _ = stop.changed() => true,
        };
        // Read before the copy is taken: a change made meanwhile shows at the next tick.
        let seen = (store.changes(), queue.changes());
        if seen == saved && !last {
            continue;
        }
        let state = saved_state(&store, &queue);
        let target = path.clone();
        let result = tokio::task::spawn_blocking(move || state_file::save(&target, &state))
            .await
            .unwrap_or_else(|e| {
                Err(StateFileError::Io {
                    path: path.clone(),
                    source: std::io::Error::other(e.to_string()),
                })
            });
        if last {
            return result;
        }
        if let Err(err) = result {
            tracing::warn!(error = %err, "saving the state failed; trying again at the next change");
        }
        saved = seen;
    }
}

/// The local stand-in for the scheduler Lambda (run more often than every minute: a
/// run hands over only what is due and not handed yet).
async fn run_scheduler(store: Arc<MemoryStore>, queue: Arc<MemoryQueue>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        every.tick().await;
        if let Err(err) = run_now(store.as_ref(), queue.as_ref()).await {
            tracing::warn!(error = %err, "scheduler failed");
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_specs() {
        let k = parse_key_spec("demo:admin:avk:with:colons").expect("valid");
        assert_eq!(
            (k.org.as_str(), k.role, k.key.as_str()),
            ("demo", Role::Admin, "avk:with:colons")
        );
        assert!(parse_key_spec("demo:owner:avk_local_admin").is_err());
        assert!(parse_key_spec("demo:admin").is_err());
        assert!(parse_key_spec("demo:admin:").is_err());
    }

    fn options(args: &[&str]) -> Options {
        Cli::try_parse_from(std::iter::once("webhooks-local").chain(args.iter().copied()))
            .expect("valid flags")
            .server
    }

    #[test]
    fn listen_is_a_subcommand_with_its_own_flags() {
        let cli = Cli::try_parse_from([
            "webhooks-local",
            "listen",
            "--key",
            "avk_x",
            "--events",
            "a.b,c.d",
            "--forward-to",
            "http://localhost:8000/hooks",
        ])
        .expect("valid");
        let Some(Command::Listen(listen)) = cli.command else {
            panic!("listen expected");
        };
        assert_eq!(listen.events, ["a.b", "c.d"]);
        assert_eq!(listen.server, "http://127.0.0.1:3000");
        assert_eq!(listen.org, None, "the key's own by default");
        assert!(Cli::try_parse_from(["webhooks-local", "listen", "--key", "k"]).is_err());
        assert!(
            Cli::try_parse_from(["webhooks-local", "--listen", "127.0.0.1:1", "listen"]).is_err()
        );
    }

    #[tokio::test]
    async fn target_defaults_and_overrides() {
        let none: [(&str, &str); 0] = [];
        let s = LocalServer::prepare(options(&[]), &none)
            .await
            .expect("default");
        assert_eq!(s.allowed_targets, loopback());
        assert!(s.demo_admin_key.is_some());

        let env = [("ALLOWED_TARGET_CIDRS", "10.0.0.0/8")];
        let s = LocalServer::prepare(options(&[]), &env).await.expect("env");
        assert_eq!(s.allowed_targets.len(), 1);

        let s = LocalServer::prepare(options(&["--allow-target", "192.168.0.0/16"]), &env)
            .await
            .expect("flag wins");
        assert_eq!(s.allowed_targets[0].to_string(), "192.168.0.0/16");

        let s = LocalServer::prepare(options(&["--allow-target", "none"]), &none)
            .await
            .expect("none");
        assert!(s.allowed_targets.is_empty());

        let s = LocalServer::prepare(options(&["--key", "acme:member:avk_acme_member"]), &none)
            .await
            .expect("keys");
        assert!(s.demo_admin_key.is_none());

        assert!(
            LocalServer::prepare(options(&["--allow-target", "nope"]), &none)
                .await
                .is_err()
        );
        assert!(
            LocalServer::prepare(options(&["--root-cert", "/no/such.pem"]), &none)
                .await
                .is_err()
        );
        assert!(
            LocalServer::prepare(options(&["--key", "BAD:admin:avk_local_admin"]), &none)
                .await
                .is_err()
        );
    }
}
