//! What both receivers ([`crate::HttpsReceiver`], [`crate::raw::RawTlsReceiver`]) are
//! underneath: a listener on `127.0.0.1` at a free port serving a [`TestCa`]'s
//! certificate, and its accept loop, stopped on drop with every open connection.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::TestCa;
use crate::local_server::AcceptLoop;

/// A bound TLS test server: its address, the CA that issued its certificate, and the
/// accept loop. Panics (it is a test helper) if the port cannot be bound.
pub struct TlsServer {
    accept_loop: AcceptLoop,
    ca_pem: String,
}

impl TlsServer {
    /// Binds `127.0.0.1:0` and runs `connection` on every TCP connection accepted, with
    /// the acceptor of `ca`'s leaf for its handshake; each in a task of its own.
    pub(crate) async fn start<C, F>(ca: &TestCa, mut connection: C) -> Self
    where
        C: FnMut(TcpStream, TlsAcceptor) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let acceptor = ca.acceptor();
        let accept_loop =
            AcceptLoop::start("testkit", move |tcp| connection(tcp, acceptor.clone())).await;
        Self {
            accept_loop,
            ca_pem: ca.pem().to_owned(),
        }
    }

    /// The bound address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.accept_loop.addr()
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// `https://127.0.0.1:PORT/path` (a missing leading `/` is added).
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{}", self.port(), slash(path))
    }

    /// `https://localhost:PORT/path`: the same server, addressed by name (so a client has
    /// to resolve it; the certificate is valid for `localhost` too).
    pub fn localhost_url(&self, path: &str) -> String {
        format!("https://localhost:{}{}", self.port(), slash(path))
    }

    /// PEM of the CA certificate that issued the server's certificate: trust this.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes [`Self::ca_pem`] to `dir/testkit-ca-PORT.pem` and returns the path.
    /// Panics if the file cannot be written.
    pub fn write_ca_pem(&self, dir: impl AsRef<Path>) -> PathBuf {
        let path = dir.as_ref().join(format!("testkit-ca-{}.pem", self.port()));
        std::fs::write(&path, &self.ca_pem)
            .unwrap_or_else(|e| panic!("testkit: write {}: {e}", path.display()));
        path
    }
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer")
            .field("addr", &self.addr())
            .finish_non_exhaustive()
    }
}

fn slash(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}
