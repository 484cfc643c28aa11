//! A harness for tests that drive the real `webhooks-local` binary (README, "Local
//! server contract"): start it with flags and environment, read what it prints, talk to
//! its API with a bearer key, look at its memory, stop it.
//!
//! ```ignore
//! mod support;
//! use support::Server;
//!
//! let server = Server::builder()
//!     .key("demo", "admin", "avk_test_admin") // also the key `request` sends
//!     .root_cert(&ca_path)
//!     .env("RETRY_SCHEDULE", "1,1")
//!     .start();
//! let (status, body) = server.post("/org/demo/webhooks/events", &json!({...})).await;
//! let (exit, rest_of_stdout) = server.terminate(); // SIGTERM; a drop kills instead
//! ```
//!
//! - Every answer read through a [`Server`] ([`Server::send`], [`Server::request`] and
//!   its shorthands) must be one docs/openapi.yaml describes ([`CONTRACT`]: status,
//!   content type, required headers, body schema, error code): anything else panics,
//!   naming the violation, whatever the test expects. There is no unchecked way: no test
//!   needs one (requests no HTTP client would send go over raw sockets, as in
//!   `http_edges.rs`).
//! - The server listens on `127.0.0.1:0` (unless [`ServerBuilder::listen`] says
//!   otherwise); [`ServerBuilder::start`] reads the first line, `listening on
//!   http://ADDR`, and fails the test if it is anything else. Later lines are there for
//!   [`Server::next_line`].
//! - The settings a developer's shell might carry (`ALLOWED_TARGET_CIDRS`,
//!   `RETRY_SCHEDULE`, ...) are removed from the child's environment; only what the test
//!   sets applies.
//! - stderr (the logs) is collected; [`Server::logs`] returns it, and it is printed if
//!   the test panics while the server is alive, so a failure shows what the server said.
//! - [`Server::kill`] is a crash (SIGKILL); [`Server::try_send`] talks to a server that
//!   may be gone.
//! - A watchdog kills the process after [`ServerBuilder::kill_after`] (default 2 min), so a
//!   server that hangs fails the test instead of hanging it; dropping the [`Server`]
//!   kills it too.
//!
//! Each test crate uses part of this module, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use testkit::openapi::Contract;

/// docs/openapi.yaml, as the server serves it: every answer [`Server::send`] reads is
/// checked against it.
pub static CONTRACT: LazyLock<Contract> = LazyLock::new(|| {
    Contract::from_json(shared::api::openapi::OPENAPI_JSON)
        .expect("the served OpenAPI document is a usable contract")
});

/// Environment variables the server reads; removed from the child's environment unless
/// the test sets them.
pub const SETTINGS: &[&str] = &[
    "ALLOWED_TARGET_CIDRS",
    "EXTRA_ROOT_CERTS",
    "RETRY_SCHEDULE",
    "CIRCUIT_BREAKER_THRESHOLD",
    "DELIVERY_TIMEOUT_MS",
    "RETENTION_DAYS",
    "ENDPOINT_MAX_IN_FLIGHT",
    "LOCAL_QUEUE_LIMIT",
    "TABLE_NAME",
    "DELIVERY_QUEUE_URL",
    "LOG_LEVEL",
];

/// The cache directory every process a test starts is given (`XDG_CACHE_HOME`): the
/// development CA is made there, never in the user's own cache. One per test binary, so
/// a server and a listener of one test share it.
pub fn cache_dir() -> &'static Path {
    static DIR: LazyLock<std::path::PathBuf> = LazyLock::new(|| {
        let dir = std::env::temp_dir().join(format!("avw-local-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("test cache dir");
        dir
    });
    &DIR
}

/// The lines a child prints, as they come, through a channel (so a test can wait for
/// one with a timeout).
pub fn line_channel(output: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// How much of stderr is kept (the end of it).
const LOG_CAP: usize = 1 << 20;

/// How to start the server; see [`Server::builder`].
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    listen: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    bearer: Option<String>,
    kill_after: Duration,
}

impl ServerBuilder {
    /// `--listen ADDR` (default `127.0.0.1:0`, a free port).
    pub fn listen(mut self, addr: &str) -> Self {
        self.listen = addr.to_owned();
        self
    }

    /// One more command-line argument, as is.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// More command-line arguments, as they are.
    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// An environment variable for the child.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `--key ORG:ROLE:KEY`. The first key given becomes the bearer key of
    /// [`Server::request`] and its shorthands, unless [`Self::bearer`] chose one.
    pub fn key(mut self, org: &str, role: &str, key: &str) -> Self {
        self.args.push("--key".to_owned());
        self.args.push(format!("{org}:{role}:{key}"));
        self.bearer.get_or_insert_with(|| key.to_owned());
        self
    }

    /// `--root-cert PATH`.
    pub fn root_cert(mut self, path: impl AsRef<Path>) -> Self {
        self.args.push("--root-cert".to_owned());
        self.args.push(path.as_ref().display().to_string());
        self
    }

    /// `--state PATH`.
    pub fn state(self, path: impl AsRef<Path>) -> Self {
        self.arg("--state").arg(path.as_ref().display().to_string())
    }

    /// `--allow-target CIDR` (`none` allows nothing).
    pub fn allow_target(mut self, cidr: &str) -> Self {
        self.args.push("--allow-target".to_owned());
        self.args.push(cidr.to_owned());
        self
    }

    /// The key [`Server::request`] sends as `Authorization: Bearer`.
    pub fn bearer(mut self, key: &str) -> Self {
        self.bearer = Some(key.to_owned());
        self
    }

    /// Kill the server this long after its start, whatever the test is doing.
    pub fn kill_after(mut self, limit: Duration) -> Self {
        self.kill_after = limit;
        self
    }

    /// Starts the binary and waits for `listening on http://ADDR`. Panics if it cannot
    /// be started or prints anything else first.
    pub fn start(self) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_webhooks-local"));
        command
            .args(["--listen", &self.listen])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in SETTINGS {
            command.env_remove(name);
        }
        command.env("XDG_CACHE_HOME", cache_dir());
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        let mut child = command.spawn().expect("spawn webhooks-local");
        let pid = child.id();
        let stdout = BufReader::new(child.stdout.take().expect("child stdout"));
        let logs = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut stderr) = child.stderr.take() {
            let logs = logs.clone();
            std::thread::spawn(move || {
                let mut buf = [0_u8; 8192];
                while let Ok(n) = stderr.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut kept = lock(&logs);
                    kept.extend_from_slice(&buf[..n]);
                    if kept.len() > LOG_CAP {
                        let excess = kept.len() - LOG_CAP;
                        kept.drain(..excess);
                    }
                }
            });
        }

        let child = Arc::new(Mutex::new(child));
        let (stop_watchdog, stopped) = mpsc::channel::<()>();
        {
            let child = child.clone();
            let limit = self.kill_after;
            std::thread::spawn(move || {
                if let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(limit) {
                    // `Child::kill` does nothing to a process already waited for, so this
                    // never signals a recycled pid.
                    let _ = lock(&child).kill();
                }
            });
        }

        let mut server = Server {
            child,
            stdout,
            logs,
            base: String::new(),
            pid,
            bearer: self.bearer,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("HTTP client"),
            stop_watchdog: Some(stop_watchdog),
        };
        let first = server.next_line();
        let base = first
            .trim_end()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "first line must be `listening on http://ADDR`, got {first:?}; stderr:\n{}",
                    server.logs()
                )
            })
            .to_owned();
        assert!(base.starts_with("http://"), "{base}");
        server.base = base;
        server
    }
}

/// A running `webhooks-local`. Killed when dropped (use [`Server::terminate`] for a clean
/// stop).
pub struct Server {
    child: Arc<Mutex<Child>>,
    stdout: BufReader<ChildStdout>,
    logs: Arc<Mutex<Vec<u8>>>,
    base: String,
    pid: u32,
    bearer: Option<String>,
    http: reqwest::Client,
    stop_watchdog: Option<mpsc::Sender<()>>,
}

/// The server process's memory, from `/proc/PID/status`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss: u64,
    /// `VmHWM`: the most ever resident (peak RSS).
    pub hwm: u64,
}

impl Server {
    /// Defaults: `--listen 127.0.0.1:0`, no other flag, no setting from the environment.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            listen: "127.0.0.1:0".to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            bearer: None,
            kill_after: Duration::from_secs(120),
        }
    }

    /// `http://127.0.0.1:PORT`, as printed.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `base` + `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The next line printed on stdout (with its newline; empty once stdout is closed).
    /// Blocks until there is one (the watchdog bounds the wait).
    pub fn next_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read server stdout");
        line
    }

    /// Everything the server wrote on stderr so far (its logs; the last MiB).
    pub fn logs(&self) -> String {
        String::from_utf8_lossy(&lock(&self.logs)).into_owned()
    }

    /// `VmRSS` and `VmHWM` now; `None` where `/proc` has no such figures (not Linux).
    pub fn memory(&self) -> Option<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let kib = |field: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(field))?;
            let value = line[field.len()..].trim().strip_suffix("kB")?.trim();
            value.parse::<u64>().ok().map(|k| k * 1024)
        };
        Some(Memory {
            rss: kib("VmRSS:")?,
            hwm: kib("VmHWM:")?,
        })
    }

    /// The HTTP client [`Self::send`] uses (no proxy, 30 s timeout), to build requests the
    /// shorthands do not make.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends `request` (built on [`Self::http`], to [`Self::url`]) and reads the answer,
    /// which must be one docs/openapi.yaml describes; returns the status and the body as
    /// JSON (`Null` if empty). Panics if there is no answer or the document does not
    /// describe it.
    pub async fn send(&self, request: RequestBuilder) -> (u16, Value) {
        let (status, _, json) = self.send_reading_headers(request).await;
        (status, json)
    }

    /// [`Self::send`], with the answer's headers.
    pub async fn send_reading_headers(
        &self,
        request: RequestBuilder,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let (client, request) = request.build_split();
        let request = request.expect("a well-formed request");
        let what = format!("{} {}", request.method(), request.url().path());
        execute(&client, request)
            .await
            .unwrap_or_else(|e| panic!("{what}: no answer: {e}"))
    }

    /// [`Self::send`], for a server that may be gone (killed, or killed mid-request): no
    /// whole answer is an error, not a panic. An answer must still be one
    /// docs/openapi.yaml describes.
    pub async fn try_send(&self, request: RequestBuilder) -> Result<(u16, Value), reqwest::Error> {
        let (client, request) = request.build_split();
        let request = request.expect("a well-formed request");
        execute(&client, request)
            .await
            .map(|(status, _, json)| (status, json))
    }

    /// Sends a request with the bearer key (if any) and a JSON body (if any), through
    /// [`Self::send`]: the answer is checked against docs/openapi.yaml.
    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.request_as(self.bearer.as_deref(), method, path, body)
            .await
    }

    /// [`Self::request`] with another key, or none.
    pub async fn request_as(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.request(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.request(Method::POST, path, Some(body)).await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch(&self, path: &str, body: &Value) -> (u16, Value) {
        self.request(Method::PATCH, path, Some(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.request(Method::DELETE, path, None).await
    }

    /// An endpoint of `org` at `url` for `alert.fired`, created (checked: 201); its JSON.
    pub async fn create_endpoint(&self, org: &str, url: &str) -> Value {
        let (status, created) = self
            .post(
                &format!("/org/{org}/webhooks/endpoints"),
                &serde_json::json!({"url": url, "event_types": ["alert.fired"]}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        created
    }

    /// `event` published to `org` (checked: 202); the answer.
    pub async fn publish(&self, org: &str, event: &Value) -> Value {
        let (status, published) = self
            .post(&format!("/org/{org}/webhooks/events"), event)
            .await;
        assert_eq!(status, 202, "{published}");
        published
    }

    /// SIGKILL: no chance to save or clean up. Returns the moment just before the signal
    /// was sent, once the process is gone.
    pub fn kill(&self) -> Instant {
        let mut child = lock(&self.child);
        let at = Instant::now();
        // `Child::kill` is SIGKILL on Unix; an error means it had already exited.
        let _ = child.kill();
        let _ = child.wait();
        at
    }

    /// SIGTERM, then the exit status and the rest of stdout. Panics unless the server
    /// exits by itself within 10 s.
    pub fn terminate(mut self) -> (ExitStatus, String) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {}", self.pid);
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = lock(&self.child).try_wait().expect("wait for the server") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "did not exit within 10 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut rest = String::new();
        self.stdout
            .read_to_string(&mut rest)
            .expect("read server stdout");
        (status, rest)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Ends the watchdog.
        self.stop_watchdog.take();
        let mut child = lock(&self.child);
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                eprintln!(
                    "--- webhooks-local (pid {}) stderr ---\n{}",
                    self.pid,
                    String::from_utf8_lossy(&lock(&self.logs))
                );
            }
        }
    }
}

/// Sends `request` and reads the whole answer, which must be one docs/openapi.yaml
/// describes (anything else panics): the status, headers and body as JSON (`Null` if
/// empty).
async fn execute(
    client: &reqwest::Client,
    request: reqwest::Request,
) -> Result<(u16, reqwest::header::HeaderMap, Value), reqwest::Error> {
    let method = request.method().to_string();
    let path = request.url().path().to_owned();
    let response = client.execute(request).await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await?;
    if let Err(violation) = CONTRACT.check(&method, &path, status, &headers, &bytes) {
        panic!("an answer docs/openapi.yaml does not describe: {violation}");
    }
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{method} {path}: every answer with a body is JSON ({e})"))
    };
    Ok((status, headers, json))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
