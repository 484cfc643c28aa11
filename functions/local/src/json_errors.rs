//! JSON for the errors hyper answers itself.
//!
//! A request hyper cannot parse (a header section larger than its buffer, a malformed
//! request line or header, a URI too long) never reaches the router: hyper writes
//! `400`, `414` or `431` with an empty body and closes the connection. Every error of
//! this service is the JSON error shape, so the connection's writes are watched and
//! exactly those bare answers are replaced by the same status with a JSON body (and
//! `Connection: close`, which is what hyper does next). On Lambda, API Gateway parses
//! requests and answers such errors itself.

use axum::serve::Listener;
use shared::api::error_body;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener whose connections get [`JsonErrors`].
pub struct JsonErrorsListener(pub TcpListener);

impl Listener for JsonErrorsListener {
    type Io = JsonErrors<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = Listener::accept(&mut self.0).await;
        (JsonErrors::new(io), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Listener::local_addr(&self.0)
    }
}

/// A connection whose bare hyper error answers are rewritten as JSON.
pub struct JsonErrors<IO> {
    inner: IO,
    replacing: Option<Replacement>,
}

/// A replacement being written, for `stands_for` bytes hyper asked to write.
struct Replacement {
    bytes: Vec<u8>,
    written: usize,
    stands_for: usize,
}

impl<IO> JsonErrors<IO> {
    pub fn new(inner: IO) -> Self {
        Self {
            inner,
            replacing: None,
        }
    }
}

/// The JSON answer standing for `head`, if `head` is one of hyper's own bare error
/// answers: a whole response head of status 400, 414 or 431 with `content-length: 0`
/// and no content type (every answer of the router to an error has a JSON body).
pub fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let fields = text.strip_suffix("\r\n\r\n")?;
    let mut lines = fields.split("\r\n");
    let status = lines.next()?.strip_prefix("HTTP/1.1 ")?.get(..3)?;
    let (code, reason, message) = match status {
        "400" => (
            "bad_request",
            "Bad Request",
            "the request could not be parsed as HTTP/1.1",
        ),
        "414" => (
            "uri_too_long",
            "URI Too Long",
            "the request URI is too long",
        ),
        "431" => (
            "request_header_fields_too_large",
            "Request Header Fields Too Large",
            "the request's header section is too large",
        ),
        _ => return None,
    };
    let mut empty = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => return None,
            "content-length" => empty = value.trim() == "0",
            _ => {}
        }
    }
    if !empty {
        return None;
    }
    let body = error_body(code, message, None).to_string();
    Some(
        format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<IO: AsyncRead + Unpin> AsyncRead for JsonErrors<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for JsonErrors<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacing.is_none() {
            match rewrite(buf) {
                Some(bytes) => {
                    this.replacing = Some(Replacement {
                        bytes,
                        written: 0,
                        stands_for: buf.len(),
                    });
                }
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        // hyper calls again with the same bytes until told they are written.
        if let Some(r) = this.replacing.as_mut() {
            while r.written < r.bytes.len() {
                let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &r.bytes[r.written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                r.written += n;
            }
        }
        let stands_for = this.replacing.take().map_or(0, |r| r.stands_for);
        Poll::Ready(Ok(stands_for))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    /// Whole buffers, so a response head arrives in one `poll_write` to be recognised.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bare_errors_are_rewritten() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Fri, 27 Nov 2026 08:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite(bare).expect("rewritten")).expect("utf-8");
        let (head, body) = out.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains("connection: close"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(json["error"]["code"], "request_header_fields_too_large");
        for status in ["400", "414"] {
            let head = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
            assert!(rewrite(head.as_bytes()).is_some(), "{status}");
        }
        for kept in [
            // The router's own answers carry a JSON body.
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 431 X\r\ncontent-length: 12\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 500 X\r\ncontent-length: 0\r\n\r\n",
            // Not a whole head alone.
            b"HTTP/1.1 400 X\r\ncontent-length: 0\r\n\r\n{}",
            b"HTTP/1.1 400 X\r\ncontent-length: 0\r\n",
            b"{\"error\": 1}",
        ] {
            assert!(rewrite(kept).is_none(), "{}", String::from_utf8_lossy(kept));
        }
    }
}
