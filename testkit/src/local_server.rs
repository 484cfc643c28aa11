//! What every server in the kit (the receivers, the capacity meter) runs on: a listener
//! on `127.0.0.1` at a free port and its accept loop, stopped on drop with every open
//! connection; and HTTP/1.1 on one connection.

use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// A bound port and the task accepting its connections.
#[derive(Debug)]
pub(crate) struct AcceptLoop {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl AcceptLoop {
    /// Binds `127.0.0.1:0` and runs `connection` on every TCP connection accepted, each
    /// in a task of its own. Panics, naming `who`, if the port cannot be bound.
    pub(crate) async fn start<C, F>(who: &str, mut connection: C) -> Self
    where
        C: FnMut(TcpStream) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap_or_else(|e| panic!("{who}: bind 127.0.0.1:0: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{who}: local address: {e}"));
        let task = tokio::spawn(async move {
            // Dropped with the loop when it is aborted, which aborts every connection task.
            let mut connections = JoinSet::new();
            loop {
                while connections.try_join_next().is_some() {}
                let Ok((tcp, _peer)) = listener.accept().await else {
                    // E.g. out of file descriptors: don't spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                connections.spawn(connection(tcp));
            }
        });
        Self { addr, task }
    }

    /// The bound address (`127.0.0.1:PORT`).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for AcceptLoop {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// HTTP/1.1 on one connection until the client is done, every request answered by
/// `answer`.
pub(crate) async fn serve_http1<Io, A, F, B>(io: Io, answer: A)
where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A: Fn(Request<Incoming>) -> F + Send + 'static,
    F: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // An error here is the client's doing (it went away mid-request): nothing to report.
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(io), service_fn(answer))
        .await;
}
