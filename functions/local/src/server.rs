//! The server: its settings resolved, its store, queue, sender and router built, then
//! served with the Lambda stand-ins and the `--state` saver beside it until stopped.

use crate::cli::{KeySpec, Options};
use crate::dev_ca::DevCa;
use crate::json_errors::JsonErrorsListener;
use crate::persistence::{self, Loaded};
use crate::settings::{LocalSettings, ServerSettings, SettingsError};
use crate::{banner, stand_ins};
use axum::Router;
use ipnet::IpNet;
use shared::adapters::http_client::{OutboundBuildError, OutboundClient};
use shared::adapters::memory::MemoryStore;
use shared::adapters::memory::queue::{Jobs, MemoryQueue};
use shared::adapters::memory::state_file::{self, StateFileError};
use shared::domain::{ApiKey, KeyHash, KeyStrength, Retention, Role};
use shared::key_admin::{self, KeyError};
use shared::pipeline::Sender;
use shared::ports::{KeyStore, QueueError, StoreError};
use shared::settings::{self, ConfigError, Env};
use shared::wiring::{self, Services};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use thiserror::Error;
use tokio::net::TcpListener;

/// What stops the server from starting, or from stopping cleanly.
#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// `--allow-target` or `--root-cert` (the message names the flag).
    #[error(transparent)]
    Flag(ConfigError),
    #[error("cannot make the sender's HTTP client: {0}")]
    Client(#[from] OutboundBuildError),
    #[error("--key {org}: {source}")]
    Key { org: String, source: KeyError },
    #[error("--key {org}: cannot look the key up in the store: {source}")]
    KeyLookup { org: String, source: StoreError },
    #[error("--key {org}: that key is in the state file for another organisation or role")]
    KeyConflict { org: String },
    #[error("--state: cannot load it: {0}")]
    LoadState(StateFileError),
    #[error("--state: its store cannot be restored: {0}")]
    RestoreStore(StoreError),
    #[error("--state: its jobs cannot be queued again: {0}")]
    RestoreJobs(QueueError),
    #[error("--state: cannot save it before serving: {0}")]
    SaveState(StateFileError),
    #[error("--state: cannot save it at exit: {0}")]
    SaveAtExit(StateFileError),
    #[error("--state: the saver stopped before saving at exit: {0}")]
    SaverStopped(tokio::task::JoinError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot tell the address listened on: {0}")]
    LocalAddr(std::io::Error),
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

/// Everything the process runs with, resolved from flags and environment.
pub struct LocalServer {
    pub router: Router,
    /// The in-process sender and the queue it reads due jobs from.
    pub sender: Arc<Sender>,
    jobs: Jobs,
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

fn loopback() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect()
}

impl LocalServer {
    /// Resolve settings (flags win over `ALLOWED_TARGET_CIDRS` and `EXTRA_ROOT_CERTS`),
    /// register keys and build the router on a fresh embedded store.
    pub async fn prepare(
        options: Options,
        local: &LocalSettings,
        settings: ServerSettings,
    ) -> Result<Self, StartError> {
        let allowed_targets = if !options.allow_targets.is_empty() {
            settings::parse_cidrs("--allow-target", &options.allow_targets)
                .map_err(StartError::Flag)?
        } else {
            settings
                .outbound
                .allowed_target_cidrs
                .unwrap_or_else(loopback)
        };
        let root_certs = if options.root_certs.is_empty() {
            settings.outbound.extra_root_certs
        } else {
            options
                .root_certs
                .iter()
                .map(|p| settings::check_root_cert("--root-cert", p))
                .collect::<Result<_, _>>()
                .map_err(StartError::Flag)?
        };

        let dev_ca = local
            .cache_dir
            .as_deref()
            .ok_or_else(|| "no cache directory (set XDG_CACHE_HOME or HOME)".to_owned())
            .and_then(|dir| DevCa::find_or_create(dir).map_err(|e| e.to_string()))
            .map(|ca| ca.cert_path());

        let (saved, loaded) =
            persistence::load(options.state.as_deref()).map_err(StartError::LoadState)?;
        let store = Arc::new(
            MemoryStore::with_contents(saved.store)
                .map_err(StartError::RestoreStore)?
                .with_retention(Retention::days(settings.retention_days)),
        );
        let mut demo_admin_key = None;
        if options.keys.is_empty() {
            let (key, _) = mint(store.as_ref(), "demo", Role::Admin, None)
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

        let (queue, jobs) = MemoryQueue::local(settings.queue_limit);
        queue
            .restore(saved.jobs)
            .await
            .map_err(StartError::RestoreJobs)?;
        let queue = Arc::new(queue);
        let router = shared::api::finish(
            Services::new(store.clone(), queue.clone())
                .routes()
                .merge(console::routes(settings.frame_ancestors)),
        );
        let mut outbound = wiring::outbound_config(
            settings.delivery.timeout,
            allowed_targets.clone(),
            root_certs.clone(),
        );
        // A root only, never pinned: its name constraints (loopback) must hold.
        outbound.constrained_roots = dev_ca.iter().cloned().collect();
        let client = OutboundClient::new(outbound)?;
        let sender = Arc::new(wiring::sender(
            store.clone(),
            queue.clone(),
            Arc::new(client),
            wiring::sender_settings(&settings.delivery),
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

/// Mint a key for the organisation as the command line names it.
async fn mint(
    store: &MemoryStore,
    org: &str,
    role: Role,
    key: Option<String>,
) -> Result<(String, ApiKey), KeyError> {
    // Short keys are fine here: the local server is for development.
    key_admin::mint(
        store,
        &key_admin::parse_org(org)?,
        role,
        key,
        KeyStrength::Development,
    )
    .await
}

/// Register a `--key`; one the state file already holds for the same organisation and
/// role is kept as it is.
async fn register_key(store: &MemoryStore, spec: KeySpec) -> Result<(), StartError> {
    match mint(store, &spec.org, spec.role, Some(spec.key.clone())).await {
        Ok(_) => Ok(()),
        Err(KeyError::AlreadyRegistered) => {
            let held = store
                .find_key(&KeyHash::of(&spec.key))
                .await
                .map_err(|source| StartError::KeyLookup {
                    org: spec.org.clone(),
                    source,
                })?;
            match held {
                Some(k) if k.org == spec.org.as_str() && k.role == spec.role => Ok(()),
                _ => Err(StartError::KeyConflict { org: spec.org }),
            }
        }
        Err(source) => Err(StartError::Key {
            org: spec.org,
            source,
        }),
    }
}

/// Bind, print the banner (its first line on stdout, once ready, is `listening on
/// http://ADDR`), then serve until SIGINT or SIGTERM.
pub async fn run(
    options: Options,
    local: &LocalSettings,
    env: &impl Env,
) -> Result<(), StartError> {
    let requested = options.listen;
    let settings = ServerSettings::from_env(env)?;
    let server = LocalServer::prepare(options, local, settings).await?;
    if let Some((path, _)) = &server.state {
        // Saved once before anything is served: a file that cannot be written stops
        // start-up instead of failing at exit.
        state_file::save(
            path,
            &persistence::saved_state(&server.store, &server.queue),
        )
        .map_err(StartError::SaveState)?;
    }
    let listener = TcpListener::bind(requested)
        .await
        .map_err(|source| StartError::Listen {
            addr: requested,
            source,
        })?;
    let addr = listener.local_addr().map_err(StartError::LocalAddr)?;
    let stop = shutdown_signal();
    banner::print(addr, &server);

    let worker = tokio::spawn(stand_ins::run_worker(
        server.sender.clone(),
        server.queue.clone(),
        server.jobs,
    ));
    let scheduler = tokio::spawn(stand_ins::run_scheduler(
        server.store.clone(),
        server.queue.clone(),
    ));
    let (stop_saving, stopped) = tokio::sync::watch::channel(false);
    let saver = server.state.as_ref().map(|(path, _)| {
        tokio::spawn(persistence::keep_saving(
            path.clone(),
            server.store.clone(),
            server.queue.clone(),
            stopped,
        ))
    });
    let served = axum::serve(JsonErrorsListener(listener), server.router)
        .with_graceful_shutdown(stop)
        .await;
    worker.abort();
    scheduler.abort();
    if let Some(saver) = saver {
        // The saver finishes a save in progress, then saves once more and stops. Jobs
        // being handled stay outstanding: they are done again after a restart.
        let _ = stop_saving.send(true);
        saver
            .await
            .map_err(StartError::SaverStopped)?
            .map_err(StartError::SaveAtExit)?;
    }
    served.map_err(StartError::Serve)?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled, so a signal sent as soon as the banner
/// is out (scripts stop the server the moment it is ready) stops it cleanly instead of
/// killing it.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    async fn prepare(args: &[&str], env: &impl Env) -> Result<LocalServer, StartError> {
        let local = LocalSettings::from_env(env);
        LocalServer::prepare(options(args), &local, ServerSettings::from_env(env)?).await
    }

    fn options(args: &[&str]) -> Options {
        Cli::try_parse_from(std::iter::once("webhooks-local").chain(args.iter().copied()))
            .expect("valid flags")
            .server
    }

    #[tokio::test]
    async fn target_defaults_and_overrides() {
        let none: [(&str, &str); 0] = [];
        let s = prepare(&[], &none).await.expect("default");
        assert_eq!(s.allowed_targets, loopback());
        assert!(s.demo_admin_key.is_some());

        let env = [("ALLOWED_TARGET_CIDRS", "10.0.0.0/8")];
        let s = prepare(&[], &env).await.expect("env");
        assert_eq!(s.allowed_targets.len(), 1);

        let s = prepare(&["--allow-target", "192.168.0.0/16"], &env)
            .await
            .expect("flag wins");
        assert_eq!(s.allowed_targets[0].to_string(), "192.168.0.0/16");

        let s = prepare(&["--allow-target", "none"], &none)
            .await
            .expect("none");
        assert!(s.allowed_targets.is_empty());

        let s = prepare(&["--key", "acme:member:avk_acme_member"], &none)
            .await
            .expect("keys");
        assert!(s.demo_admin_key.is_none());

        assert!(prepare(&["--allow-target", "nope"], &none).await.is_err());
        assert!(
            prepare(&["--root-cert", "/no/such.pem"], &none)
                .await
                .is_err()
        );
        assert!(
            prepare(&["--key", "BAD:admin:avk_local_admin"], &none)
                .await
                .is_err()
        );
    }
}
