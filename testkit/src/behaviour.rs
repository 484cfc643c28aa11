//! What a receiver answers: one [`Reply`] per request, chosen by a [`Behaviour`].

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::RecordedRequest;

/// One answer: status, extra headers, body, and an optional wait before answering.
///
/// ```
/// # use std::time::Duration;
/// # use testkit::Reply;
/// let reply = Reply::status(503)
///     .header("Retry-After", "120")
///     .body("busy")
///     .delay(Duration::from_millis(50));
/// # let _ = reply;
/// ```
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status code (any valid code, including 3xx without following anything).
    pub status: u16,
    /// Extra response headers, sent as given (names must be valid header names).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: ReplyBody,
    /// How long to wait after the request body was read before sending the status line.
    pub delay: Duration,
}

/// A reply body: fixed bytes (sent with `Content-Length`) or an endless chunked stream.
#[derive(Debug, Clone)]
pub enum ReplyBody {
    /// Exactly these bytes.
    Full(Bytes),
    /// `chunk` is sent at once and then again every `every`, forever (until the client
    /// goes away or the receiver is dropped). `every` may be zero: as fast as possible.
    Endless { chunk: Bytes, every: Duration },
}

impl Reply {
    /// A reply with this status (100..=999), no extra headers, an empty body and no delay.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: ReplyBody::Full(Bytes::new()),
            delay: Duration::ZERO,
        }
    }

    /// `200 OK` with an empty body.
    pub fn ok() -> Self {
        Self::status(200)
    }

    /// Adds a response header (e.g. `Retry-After`, `Location`).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets a fixed body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = ReplyBody::Full(body.into());
        self
    }

    /// Sends `chunk` forever, one every `every` (the first at once), after the headers.
    pub fn endless_body(mut self, chunk: impl Into<Bytes>, every: Duration) -> Self {
        self.body = ReplyBody::Endless {
            chunk: chunk.into(),
            every,
        };
        self
    }

    /// Waits this long before answering (the request is recorded first).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

impl Default for Reply {
    fn default() -> Self {
        Self::ok()
    }
}

type ReplyFn = dyn Fn(&RecordedRequest) -> Reply + Send + Sync;

/// Chooses the [`Reply`] for each request, in arrival order.
///
/// - [`Behaviour::always`]: the same reply every time (a bare [`Reply`] converts into this);
/// - [`Behaviour::sequence`]: the given replies in order, then `then` for every later one;
/// - [`Behaviour::from_fn`]: a closure that sees the recorded request.
///
/// The default is `always(Reply::ok())`.
#[derive(Clone)]
pub struct Behaviour(Inner);

#[derive(Clone)]
enum Inner {
    Queue {
        replies: VecDeque<Reply>,
        then: Reply,
    },
    Fn(Arc<ReplyFn>),
}

impl Behaviour {
    /// Answers every request with `reply`.
    pub fn always(reply: Reply) -> Self {
        Self::sequence([], reply)
    }

    /// Answers the first requests with `replies`, in order, and all later ones with `then`.
    pub fn sequence(replies: impl IntoIterator<Item = Reply>, then: Reply) -> Self {
        Self(Inner::Queue {
            replies: replies.into_iter().collect(),
            then,
        })
    }

    /// Lets a closure decide, per request.
    pub fn from_fn(f: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static) -> Self {
        Self(Inner::Fn(Arc::new(f)))
    }

    pub(crate) fn next_reply(&mut self, request: &RecordedRequest) -> Reply {
        match &mut self.0 {
            Inner::Queue { replies, then } => replies.pop_front().unwrap_or_else(|| then.clone()),
            Inner::Fn(f) => f(request),
        }
    }
}

impl Default for Behaviour {
    fn default() -> Self {
        Self::always(Reply::ok())
    }
}

impl From<Reply> for Behaviour {
    fn from(reply: Reply) -> Self {
        Self::always(reply)
    }
}

impl fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Queue { replies, then } => f
                .debug_struct("Behaviour::sequence")
                .field("replies", replies)
                .field("then", then)
                .finish(),
            Inner::Fn(_) => f.write_str("Behaviour::from_fn(..)"),
        }
    }
}

/// The hyper body behind a [`ReplyBody`].
pub(crate) enum ReplyStream {
    Full(Option<Bytes>),
    Endless {
        chunk: Bytes,
        every: Duration,
        next: Pin<Box<Sleep>>,
    },
}

impl From<ReplyBody> for ReplyStream {
    fn from(body: ReplyBody) -> Self {
        match body {
            ReplyBody::Full(bytes) => Self::Full(Some(bytes).filter(|b| !b.is_empty())),
            ReplyBody::Endless { chunk, every } => Self::Endless {
                chunk,
                every,
                next: Box::pin(tokio::time::sleep(Duration::ZERO)),
            },
        }
    }
}

impl Body for ReplyStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Self::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Self::Endless { chunk, every, next } => {
                if next.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                next.as_mut().reset(Instant::now() + *every);
                Poll::Ready(Some(Ok(Frame::data(chunk.clone()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Self::Endless { .. } => SizeHint::default(),
        }
    }
}
