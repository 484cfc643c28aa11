//! A loopback TLS receiver that does not go through hyper, for receivers no well-behaved
//! HTTP server would be.
//!
//! [`RawTlsReceiver::start`] binds `127.0.0.1` on a free port and serves TLS with the leaf
//! certificate of a [`TestCa`] (the same one [`crate::HttpsReceiver::start_with_ca`]
//! uses, so one trusted CA covers both kinds of receiver). After the handshake every
//! connection runs the same [`Script`]: a list of raw [`Step`]s on the decrypted stream
//! (read the request, wait at a barrier, send bytes, trickle them a byte at a time, send
//! a huge body as fast as the socket takes it, stay silent, reset the TCP connection).
//! The canned scripts cover the usual hostile receivers:
//!
//! | Script | The receiver |
//! |---|---|
//! | [`Script::silent`] | completes TLS, reads the request, never answers |
//! | [`Script::trickled`] | sends its answer one byte every so often |
//! | [`Script::reset_after_request`] | resets the connection once the request is in |
//! | [`Script::content_length_body`] | a status line, a `Content-Length`, then that many bytes |
//!
//! Every connection is logged as a [`ConnectionLog`]: when it was accepted, the request
//! (head and body) if one was read, how many bytes were sent, and how and when it ended
//! (for instance [`End::ClientClosed`]: the client hung up while the script was reading).
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! use testkit::TestCa;
//! use testkit::raw::{RawTlsReceiver, Script};
//!
//! let ca = TestCa::new();
//! let receiver = RawTlsReceiver::start(&ca, Script::silent()).await;
//! let url = receiver.url("/hook"); // https://127.0.0.1:PORT/hook; trust ca.pem()
//! // ... make the code under test post to `url` and give up ...
//! let logs = receiver.wait_for_ended(1, Duration::from_secs(10)).await;
//! let request = logs[0].request.as_ref().expect("the request arrived");
//! assert!(request.request_line().starts_with("POST /hook "));
//! # let _ = url;
//! # }
//! ```
//!
//! Dropping the receiver stops it and closes every open connection.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Barrier, watch};
use tokio_rustls::server::TlsStream;

use crate::{TestCa, TlsServer};

/// The largest request head [`Step::ReadRequest`] accepts.
pub const MAX_REQUEST_HEAD: usize = 64 * 1024;
/// The largest request body [`Step::ReadRequest`] accepts.
pub const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;

/// One thing a connection does, in order (see [`Script`]).
#[derive(Debug, Clone)]
pub enum Step {
    /// Reads one HTTP/1.1 request: the head up to the blank line, then a body of its
    /// `Content-Length` (none without one). Chunked request bodies are refused (the
    /// connection ends with [`End::Failed`]`(InvalidData)`), as are heads over
    /// [`MAX_REQUEST_HEAD`] and bodies over [`MAX_REQUEST_BODY`].
    ReadRequest,
    /// Waits at this barrier, e.g. until every connection of a test is ready to answer.
    Barrier(Arc<Barrier>),
    /// Waits this long.
    Sleep(Duration),
    /// Sends these bytes as they are.
    Send(Bytes),
    /// Sends these bytes one at a time, each flushed on its own (one TLS record per
    /// byte), `every` apart (the first at once).
    Trickle { bytes: Bytes, every: Duration },
    /// Sends `len` copies of `byte`, 64 KiB at a time, as fast as the socket takes them.
    Fill { len: u64, byte: u8 },
    /// Sends nothing: reads and discards until the client closes the connection.
    Silence,
    /// Resets the TCP connection: `SO_LINGER` 0, then close, without a TLS
    /// `close_notify`, so the client gets a RST. Ends the script.
    Reset,
}

/// What every connection of a [`RawTlsReceiver`] does after the TLS handshake.
///
/// When the last step has run, the connection is closed cleanly (TLS `close_notify`,
/// then FIN). A step that fails (the client went away, say) ends the script there.
#[derive(Debug, Clone, Default)]
pub struct Script(Vec<Step>);

impl Script {
    /// These steps, in order.
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        Self(steps.into_iter().collect())
    }

    /// Adds a step at the end.
    pub fn then(mut self, step: Step) -> Self {
        self.0.push(step);
        self
    }

    /// The steps.
    pub fn steps(&self) -> &[Step] {
        &self.0
    }

    /// Completes TLS, reads the request, then sends nothing until the client gives up.
    pub fn silent() -> Self {
        Self::new([Step::ReadRequest, Step::Silence])
    }

    /// Reads the request, then sends `bytes` one byte every `every`, then stays silent.
    /// With a long enough `bytes` (say a status line and a padded header), the answer's
    /// head never completes within a client's timeout.
    pub fn trickled(bytes: impl Into<Bytes>, every: Duration) -> Self {
        Self::new([
            Step::ReadRequest,
            Step::Trickle {
                bytes: bytes.into(),
                every,
            },
            Step::Silence,
        ])
    }

    /// Reads the request, then resets the TCP connection (see [`Step::Reset`]).
    pub fn reset_after_request() -> Self {
        Self::new([Step::ReadRequest, Step::Reset])
    }

    /// Reads the request, then answers `status` with `Content-Length: len` and a body of
    /// `len` bytes `x`, sent as fast as the socket takes them.
    pub fn content_length_body(status: u16, len: u64) -> Self {
        Self::new([
            Step::ReadRequest,
            Step::Send(response_head(
                status,
                &[("Content-Length", &len.to_string())],
            )),
            Step::Fill { len, byte: b'x' },
        ])
    }
}

/// An HTTP/1.1 response head: the status line, these headers, the blank line.
///
/// ```
/// let head = testkit::raw::response_head(500, &[("Content-Length", "2")]);
/// assert_eq!(&head[..], b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\n\r\n");
/// ```
pub fn response_head(status: u16, headers: &[(&str, &str)]) -> Bytes {
    let reason = match status {
        200 => "OK",
        204 => "No Content",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    Bytes::from(head)
}

/// A request read by [`Step::ReadRequest`].
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// The request line and the header lines, without the blank line that ends them.
    pub head: String,
    /// The body (its `Content-Length` bytes).
    pub body: Bytes,
    /// When the whole request had arrived.
    pub received_at: Instant,
}

impl RawRequest {
    /// The first line, e.g. `POST /hook HTTP/1.1`.
    pub fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }

    /// A header's value (trimmed); `name` is matched case-insensitively. The first one
    /// if it is repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.head, name)
    }
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Every step ran and the connection was closed cleanly.
    Completed,
    /// The client closed the connection (end of stream, with or without TLS
    /// `close_notify`) while a step was reading.
    ClientClosed,
    /// [`Step::Reset`] reset it.
    Reset,
    /// The TLS handshake failed (e.g. the client refused the certificate).
    HandshakeFailed(io::ErrorKind),
    /// A step failed with this error, e.g. `BrokenPipe` or `ConnectionReset` when
    /// writing to a client that has gone away.
    Failed(io::ErrorKind),
}

/// One connection as the receiver saw it.
#[derive(Debug, Clone)]
pub struct ConnectionLog {
    /// When the TCP connection was accepted.
    pub accepted_at: Instant,
    /// The request, once [`Step::ReadRequest`] has read it.
    pub request: Option<RawRequest>,
    /// Bytes sent by [`Step::Send`], [`Step::Trickle`] and [`Step::Fill`]: plaintext
    /// bytes the TLS stream accepted, updated after each step.
    pub bytes_sent: u64,
    /// When and how it ended; `None` while it is open.
    pub ended: Option<(Instant, End)>,
}

struct State {
    connections: Mutex<Vec<ConnectionLog>>,
    changed: watch::Sender<u64>,
}

/// A count: the logs themselves may be large.
impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} connection(s)", self.connections().len())
    }
}

impl State {
    fn connections(&self) -> MutexGuard<'_, Vec<ConnectionLog>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs a connection just accepted; its index in the log.
    fn accepted(&self) -> usize {
        let index = {
            let mut logs = self.connections();
            logs.push(ConnectionLog {
                accepted_at: Instant::now(),
                request: None,
                bytes_sent: 0,
                ended: None,
            });
            logs.len() - 1
        };
        self.changed.send_modify(|n| *n += 1);
        index
    }

    fn update(&self, index: usize, f: impl FnOnce(&mut ConnectionLog)) {
        if let Some(log) = self.connections().get_mut(index) {
            f(log);
        }
        self.changed.send_modify(|n| *n += 1);
    }
}

/// A TLS server on `127.0.0.1:PORT` that runs a [`Script`] on every connection and logs
/// each one. Its address, URLs and CA are those of its [`TlsServer`]. Panics (it is a
/// test helper) if the port cannot be bound. Stops when dropped, closing every open
/// connection.
#[derive(Debug)]
pub struct RawTlsReceiver {
    server: TlsServer,
    state: Arc<State>,
}

impl RawTlsReceiver {
    /// Starts a receiver serving `ca`'s leaf certificate and running `script` on every
    /// connection.
    pub async fn start(ca: &TestCa, script: Script) -> Self {
        let state = Arc::new(State {
            connections: Mutex::new(Vec::new()),
            changed: watch::Sender::new(0),
        });
        let (script, logging) = (Arc::new(script), state.clone());
        let server = TlsServer::start(ca, move |tcp, acceptor| {
            // Logged on accepting, so the logs are in the order connections came.
            let index = logging.accepted();
            let (script, state) = (script.clone(), logging.clone());
            async move {
                let end = match acceptor.accept(tcp).await {
                    Ok(tls) => run_script(tls, &script, &state, index).await,
                    Err(error) => End::HandshakeFailed(error.kind()),
                };
                state.update(index, |log| log.ended = Some((Instant::now(), end)));
            }
        })
        .await;
        Self { server, state }
    }

    /// Every connection so far, in the order they were accepted.
    pub fn connections(&self) -> Vec<ConnectionLog> {
        self.state.connections().clone()
    }

    /// Waits until `done` holds for the connections logged and returns them; `None` if it
    /// did not within `timeout`.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&[ConnectionLog]) -> bool,
    ) -> Option<Vec<ConnectionLog>> {
        let mut changed = self.state.changed.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            loop {
                if done(&self.state.connections()) {
                    return;
                }
                if changed.changed().await.is_err() {
                    // The sender lives in `self.state`: cannot happen while `self` does.
                    std::future::pending::<()>().await;
                }
            }
        })
        .await;
        waited.ok().map(|()| self.connections())
    }

    /// Waits until at least `n` requests have been read; panics if they were not within
    /// `timeout`.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<ConnectionLog> {
        self.wait_for_count(n, timeout, "request(s)", |c| c.request.is_some())
            .await
    }

    /// Waits until at least `n` connections have ended; panics if they had not within
    /// `timeout`.
    pub async fn wait_for_ended(&self, n: usize, timeout: Duration) -> Vec<ConnectionLog> {
        self.wait_for_count(n, timeout, "ended connection(s)", |c| c.ended.is_some())
            .await
    }

    /// Waits until at least `n` connections are `counted`; panics, naming them `what`,
    /// if they were not within `timeout`.
    async fn wait_for_count(
        &self,
        n: usize,
        timeout: Duration,
        what: &str,
        counted: fn(&ConnectionLog) -> bool,
    ) -> Vec<ConnectionLog> {
        let count = |logs: &[ConnectionLog]| logs.iter().filter(|c| counted(c)).count();
        match self.wait_until(timeout, |logs| count(logs) >= n).await {
            Some(logs) => logs,
            None => panic!(
                "testkit: expected at least {n} {what} within {timeout:?}, got {}",
                count(&self.connections())
            ),
        }
    }
}

/// The address, URLs and CA: the server's.
impl std::ops::Deref for RawTlsReceiver {
    type Target = TlsServer;

    fn deref(&self) -> &TlsServer {
        &self.server
    }
}

/// Runs the steps on one connection; the result is how it ended.
async fn run_script(
    mut tls: TlsStream<TcpStream>,
    script: &Script,
    state: &State,
    index: usize,
) -> End {
    for step in script.steps() {
        let mut sent = 0_u64;
        let result = run_step(&mut tls, step, &mut sent, state, index).await;
        state.update(index, |log| log.bytes_sent += sent);
        match result {
            Ok(None) => {}
            Ok(Some(end)) => return end,
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                return End::ClientClosed;
            }
            Err(error) => return End::Failed(error.kind()),
        }
    }
    let _ = tls.shutdown().await;
    End::Completed
}

/// One step; `Ok(Some(end))` ends the script there.
async fn run_step(
    tls: &mut TlsStream<TcpStream>,
    step: &Step,
    sent: &mut u64,
    state: &State,
    index: usize,
) -> io::Result<Option<End>> {
    match step {
        Step::ReadRequest => {
            let (head, body) = read_request(tls).await?;
            let request = RawRequest {
                head,
                body,
                received_at: Instant::now(),
            };
            state.update(index, |log| log.request = Some(request));
        }
        Step::Barrier(barrier) => {
            barrier.wait().await;
        }
        Step::Sleep(pause) => tokio::time::sleep(*pause).await,
        Step::Send(bytes) => {
            tls.write_all(bytes).await?;
            tls.flush().await?;
            *sent += bytes.len() as u64;
        }
        Step::Trickle { bytes, every } => {
            for (i, byte) in bytes.iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(*every).await;
                }
                tls.write_all(std::slice::from_ref(byte)).await?;
                tls.flush().await?;
                *sent += 1;
            }
        }
        Step::Fill { len, byte } => {
            let chunk = vec![*byte; 64 * 1024];
            let mut left = *len;
            while left > 0 {
                let take = usize::try_from(left).map_or(chunk.len(), |l| l.min(chunk.len()));
                let written = tls.write(&chunk[..take]).await?;
                if written == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                *sent += written as u64;
                left -= written as u64;
            }
            tls.flush().await?;
        }
        Step::Silence => {
            let mut sink = [0_u8; 4096];
            while tls.read(&mut sink).await? > 0 {}
            return Ok(Some(End::ClientClosed));
        }
        Step::Reset => {
            tls.get_ref().0.set_zero_linger()?;
            // The caller drops the stream, closing the socket: with a zero linger the
            // kernel sends RST instead of FIN.
            return Ok(Some(End::Reset));
        }
    }
    Ok(None)
}

/// Reads one request: the head up to `\r\n\r\n`, then a body of its `Content-Length`.
/// Bytes after that body (a pipelined request) are dropped.
async fn read_request<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<(String, Bytes)> {
    let invalid = |message: &str| io::Error::new(io::ErrorKind::InvalidData, message.to_owned());
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 8192];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if buf.len() > MAX_REQUEST_HEAD {
            return Err(invalid("request head too large"));
        }
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if head_end > MAX_REQUEST_HEAD {
        return Err(invalid("request head too large"));
    }
    let head = String::from_utf8(buf[..head_end].to_vec())
        .map_err(|_| invalid("request head is not UTF-8"))?;
    if header_value(&head, "transfer-encoding").is_some() {
        return Err(invalid("chunked request bodies are not supported"));
    }
    let len = match header_value(&head, "content-length") {
        None => 0,
        Some(value) => value
            .parse::<usize>()
            .map_err(|_| invalid("bad Content-Length"))?,
    };
    if len > MAX_REQUEST_BODY {
        return Err(invalid("request body too large"));
    }
    let mut body = buf.split_off(head_end + 4);
    while body.len() < len {
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    Ok((head, Bytes::from(body)))
}

/// The (trimmed) value of the first header line named `name`, case-insensitively; the
/// request or status line is skipped.
fn header_value<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` to the parser through a pipe that carries 1 byte at a time, so every
    /// boundary falls mid-read.
    async fn parse(bytes: &'static [u8]) -> io::Result<(String, Bytes)> {
        let (mut client, mut server) = tokio::io::duplex(1);
        let writer = tokio::spawn(async move {
            let _ = client.write_all(bytes).await;
            // Dropping `client` is the end of the stream.
        });
        let parsed = read_request(&mut server).await;
        drop(server);
        let _ = writer.await;
        parsed
    }

    #[tokio::test]
    async fn reads_head_and_content_length_body_across_reads() {
        let (head, body) =
            parse(b"POST /hook?x=1 HTTP/1.1\r\nHost: a\r\ncontent-LENGTH:  5 \r\n\r\nhello")
                .await
                .expect("parses");
        assert_eq!(
            head,
            "POST /hook?x=1 HTTP/1.1\r\nHost: a\r\ncontent-LENGTH:  5 "
        );
        assert_eq!(&body[..], b"hello");

        let (head, body) = parse(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .expect("no body");
        assert_eq!(head, "GET / HTTP/1.1\r\nHost: a");
        assert!(body.is_empty());

        // A pipelined second request is not part of the body.
        let (_, body) = parse(b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET / HTTP/1.1")
            .await
            .expect("pipelined");
        assert_eq!(&body[..], b"hi");
    }

    #[tokio::test]
    async fn refuses_what_it_cannot_read() {
        let kind = |r: io::Result<(String, Bytes)>| match r {
            Ok((head, _)) => panic!("must fail, read a head of {} bytes", head.len()),
            Err(error) => error.kind(),
        };
        let refused: [(&'static [u8], io::ErrorKind); 4] = [
            (
                b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nshort",
                io::ErrorKind::UnexpectedEof,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\n",
                io::ErrorKind::UnexpectedEof,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                io::ErrorKind::InvalidData,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                io::ErrorKind::InvalidData,
            ),
        ];
        for (request, expected) in refused {
            let text = String::from_utf8_lossy(request);
            assert_eq!(kind(parse(request).await), expected, "{text:?}");
        }
        let huge: &'static [u8] = Box::leak(
            format!(
                "GET / HTTP/1.1\r\nX: {}\r\n\r\n",
                "a".repeat(MAX_REQUEST_HEAD + 10)
            )
            .into_bytes()
            .into_boxed_slice(),
        );
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let writer = tokio::spawn(async move {
            let _ = client.write_all(huge).await;
        });
        assert_eq!(
            kind(read_request(&mut server).await),
            io::ErrorKind::InvalidData
        );
        drop(server);
        let _ = writer.await;
    }

    #[test]
    fn headers_and_heads() {
        let request = RawRequest {
            head: "POST /a HTTP/1.1\r\nX-One: 1\r\nx-one: 2\r\nEmpty:".to_owned(),
            body: Bytes::new(),
            received_at: Instant::now(),
        };
        assert_eq!(request.request_line(), "POST /a HTTP/1.1");
        assert_eq!(request.header("x-ONE"), Some("1"));
        assert_eq!(request.header("empty"), Some(""));
        assert_eq!(request.header("post /a http/1.1\r\nx"), None);
        assert_eq!(request.header("missing"), None);
        assert_eq!(
            &response_head(307, &[("Location", "https://x/")])[..],
            b"HTTP/1.1 307 Temporary Redirect\r\nLocation: https://x/\r\n\r\n"
        );
    }

    fn client(ca: &TestCa, timeout: Duration) -> reqwest::Client {
        let root = reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("CA PEM");
        reqwest::Client::builder()
            .tls_certs_only([root])
            .no_proxy()
            .timeout(timeout)
            .build()
            .expect("client")
    }

    #[tokio::test]
    async fn scripted_answer_is_read_by_a_real_client_and_logged() {
        let ca = TestCa::new();
        let receiver = RawTlsReceiver::start(
            &ca,
            Script::new([
                Step::ReadRequest,
                Step::Send(response_head(201, &[("Content-Length", "5")])),
                Step::Trickle {
                    bytes: Bytes::from_static(b"he"),
                    every: Duration::from_millis(10),
                },
                Step::Fill { len: 3, byte: b'y' },
            ]),
        )
        .await;
        let response = client(&ca, Duration::from_secs(10))
            .post(receiver.url("hook?x=1"))
            .body("ping")
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), 201);
        assert_eq!(response.text().await.expect("body"), "heyyy");

        let logs = receiver.wait_for_ended(1, Duration::from_secs(5)).await;
        let log = &logs[0];
        let request = log.request.as_ref().expect("request");
        assert_eq!(request.request_line(), "POST /hook?x=1 HTTP/1.1");
        assert_eq!(request.header("content-length"), Some("4"));
        assert_eq!(&request.body[..], b"ping");
        let head_len = response_head(201, &[("Content-Length", "5")]).len() as u64;
        assert_eq!(log.bytes_sent, head_len + 5);
        assert!(matches!(log.ended, Some((_, End::Completed))), "{log:?}");
    }

    #[tokio::test]
    async fn reset_silence_and_refused_certificates_are_logged() {
        let ca = TestCa::new();
        let reset = RawTlsReceiver::start(&ca, Script::reset_after_request()).await;
        let error = client(&ca, Duration::from_secs(10))
            .post(reset.url("/"))
            .body("x")
            .send()
            .await
            .expect_err("reset");
        assert!(!error.is_timeout(), "{error:?}");
        let logs = reset.wait_for_ended(1, Duration::from_secs(5)).await;
        assert!(logs[0].request.is_some());
        assert!(matches!(logs[0].ended, Some((_, End::Reset))), "{logs:?}");

        let silent = RawTlsReceiver::start(&ca, Script::silent()).await;
        let started = Instant::now();
        let error = client(&ca, Duration::from_millis(300))
            .post(silent.url("/"))
            .body("x")
            .send()
            .await
            .expect_err("never answers");
        assert!(error.is_timeout(), "{error:?}");
        assert!(started.elapsed() >= Duration::from_millis(300));
        let logs = silent.wait_for_ended(1, Duration::from_secs(5)).await;
        assert!(logs[0].request.is_some());
        assert_eq!(logs[0].bytes_sent, 0);
        assert!(
            matches!(logs[0].ended, Some((_, End::ClientClosed))),
            "{logs:?}"
        );

        // A client that trusts another CA never gets past the handshake.
        let stranger = RawTlsReceiver::start(&TestCa::new(), Script::silent()).await;
        let error = client(&ca, Duration::from_secs(10))
            .post(stranger.url("/"))
            .send()
            .await
            .expect_err("untrusted");
        assert!(error.is_connect(), "{error:?}");
        let logs = stranger.wait_for_ended(1, Duration::from_secs(5)).await;
        assert!(logs[0].request.is_none());
        assert!(
            matches!(logs[0].ended, Some((_, End::HandshakeFailed(_)))),
            "{logs:?}"
        );
    }
}
