//! What bounds one connection besides hyper's own settings, for HTTP/2 above all, where one
//! connection carries many requests and hyper's HTTP/1.1 header-read timeout does not apply.
//!
//! - Until its first request, and under HTTP/2 whenever no stream is open, a connection may be
//!   idle for `--header-read-timeout`; past it, it is closed. Only requests count as activity:
//!   a client that sends nothing, trickles an HTTP/2 preface or a header block, or keeps the
//!   connection up with PINGs is cut off alike. (Under HTTP/1.1, once the first request has
//!   come, hyper's header-read timeout bounds every later one, as before.)
//! - Under HTTP/2 a response the client does not read (it grants no flow-control window) is
//!   not a blocked socket write, so `--response-write-timeout` on the socket cannot see it:
//!   each HTTP/2 response is watched, and one whose next frame waits longer than that bound
//!   for the client closes its connection, which drops every stream of it, their guests and
//!   their places under `--max-concurrent-requests`.

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// One connection's state, shared by its IO and its requests.
pub(crate) struct Connection {
    /// When the connection began: the times below count from it, in nanoseconds.
    began: Instant,
    /// How long it may be idle until its first request, and after it; and how long a
    /// response may wait for the client.
    first_idle_timeout: Duration,
    idle_timeout: Duration,
    write_timeout: Duration,
    /// A request has come.
    requested: AtomicBool,
    /// An HTTP/1.1 request has come: hyper's header-read timeout bounds the rest.
    http1: AtomicBool,
    /// HTTP/2 streams whose responses are not yet done.
    open_streams: AtomicUsize,
    /// When the last stream ended (or the connection began).
    idle_since: AtomicU64,
    /// Why it is to be closed, once it is.
    closed: Mutex<Option<&'static str>>,
    /// The connection's reader, woken to close it.
    reader: Mutex<Option<Waker>>,
}

impl Connection {
    /// A connection that may be idle `first_idle_timeout` until its first request (less than
    /// `idle_timeout` for one accepted under pressure), `idle_timeout` after it.
    pub(crate) fn new(
        first_idle_timeout: Duration,
        idle_timeout: Duration,
        write_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            began: Instant::now(),
            first_idle_timeout,
            idle_timeout,
            write_timeout,
            requested: AtomicBool::new(false),
            http1: AtomicBool::new(false),
            open_streams: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            closed: Mutex::new(None),
            reader: Mutex::new(None),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.began.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// An HTTP/1.1 request arrived on it.
    pub(crate) fn http1_request(&self) {
        if !self.http1.load(Ordering::Relaxed) {
            self.http1.store(true, Ordering::Relaxed);
            self.requested.store(true, Ordering::Relaxed);
        }
    }

    /// An HTTP/2 stream began; it is open until the returned guard is dropped. Also returns
    /// how many are open with it.
    pub(crate) fn stream(self: &Arc<Self>) -> (OpenStream, usize) {
        let open = self.open_streams.fetch_add(1, Ordering::AcqRel) + 1;
        if !self.requested.load(Ordering::Relaxed) {
            self.requested.store(true, Ordering::Relaxed);
        }
        (OpenStream(self.clone()), open)
    }

    /// How long the connection may be idle now.
    fn idle_bound(&self) -> Duration {
        match self.requested.load(Ordering::Relaxed) {
            true => self.idle_timeout,
            false => self.first_idle_timeout,
        }
    }

    /// Closes the connection: its reader fails with `why`, which ends it.
    fn close(&self, why: &'static str) {
        self.closed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(why);
        self.wake_reader();
    }

    /// Wakes the connection's reader, so that it looks at the state again.
    fn wake_reader(&self) {
        let waker = self
            .reader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Whether the idle bound applies now: no HTTP/1.1 request yet and no stream open.
    fn idle(&self) -> bool {
        !self.http1.load(Ordering::Relaxed) && self.open_streams.load(Ordering::Acquire) == 0
    }
}

/// An open HTTP/2 stream: the connection is not idle while one is held.
pub(crate) struct OpenStream(Arc<Connection>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        let connection = &self.0;
        connection
            .idle_since
            .store(connection.now(), Ordering::Relaxed);
        if connection.open_streams.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last stream ended, maybe on another task than the connection's, whose
            // reader is then waiting on the socket with no idle timer armed: woken, it arms
            // one.
            connection.wake_reader();
        }
    }
}

/// HTTP/2's connection preface: what a client opens with when it speaks HTTP/2 (RFC 9113,
/// 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The HTTP a connection speaks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Protocol {
    Http1,
    Http2,
}

/// A connection's IO (what hyper reads and writes), failing its reads once the connection has
/// been idle too long or is closed.
pub(crate) struct Bounded<I> {
    io: I,
    connection: Arc<Connection>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// What [`Bounded::sniff`] read, handed to hyper's first reads: `first[read..filled]`.
    first: [u8; PREFACE.len()],
    read: usize,
    filled: usize,
}

impl<I> Bounded<I> {
    pub(crate) fn new(io: I, connection: Arc<Connection>) -> Self {
        Self {
            io,
            connection,
            timer: None,
            first: [0; PREFACE.len()],
            read: 0,
            filled: 0,
        }
    }

    /// `Some(error)` if the connection is to end now; otherwise the timer is set to wake the
    /// reader when its idle bound runs out.
    fn check(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        let connection = &self.connection;
        // A stream's watcher closes the connection, and its last stream's end re-arms the idle
        // bound, by waking this reader (streams may end on other tasks than this one). The
        // waker is left before the state is read, so that a change made meanwhile wakes it.
        {
            let mut reader = connection
                .reader
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !reader.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *reader = Some(cx.waker().clone());
            }
        }
        let closed = *connection
            .closed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(why) = closed {
            return Some(io::Error::new(io::ErrorKind::TimedOut, why));
        }
        if !connection.idle() {
            return None;
        }
        let since = Duration::from_nanos(connection.idle_since.load(Ordering::Relaxed));
        let deadline = connection.began + since + connection.idle_bound();
        crate::wait::poll_deadline(&mut self.timer, deadline, cx)
            .is_ready()
            .then(|| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the connection was idle for `--header-read-timeout`",
                )
            })
    }
}

impl<I: AsyncRead + Unpin> Bounded<I> {
    /// Which HTTP the client speaks, told by its first bytes (under the idle bound): HTTP/2 if
    /// they are the preface, HTTP/1.1 from the first byte that is not (or if it sends nothing
    /// and closes). What was read is read again by hyper.
    pub(crate) async fn sniff(&mut self) -> io::Result<Protocol> {
        use tokio::io::AsyncReadExt as _;
        let mut first = [0; PREFACE.len()];
        let mut filled = 0;
        let protocol = loop {
            let read = self.read(&mut first[filled..]).await?;
            filled += read;
            if read == 0 || first[..filled] != PREFACE[..filled] {
                break Protocol::Http1;
            }
            if filled == PREFACE.len() {
                break Protocol::Http2;
            }
        };
        (self.first, self.read, self.filled) = (first, 0, filled);
        Ok(protocol)
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Bounded<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.read < self.filled {
            let (read, filled) = (self.read, self.filled);
            let take = (filled - read).min(buf.remaining());
            buf.put_slice(&self.first[read..read + take]);
            self.read += take;
            return Poll::Ready(Ok(()));
        }
        if !self.connection.http1.load(Ordering::Relaxed)
            && let Some(error) = self.check(cx)
        {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Bounded<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The most a frame [`Stream`] hands hyper holds: hyper asks for the next only once the client
/// has granted window for all of the last, so a piece this small keeps one wait short and a
/// client that reads slowly but steadily (a few hundred bytes a second) is served. (A guest's
/// write may be a megabyte.)
const PIECE: usize = 16 * 1024;

/// An HTTP/2 response body: its stream is open while it lives, and a frame it hands hyper
/// that the client does not take within `--response-write-timeout` closes the connection.
pub(crate) struct Stream {
    inner: HyperOutgoingBody,
    /// What is left of a data frame larger than [`PIECE`].
    rest: Option<Bytes>,
    /// When the last frame was handed to hyper, in the connection's nanoseconds; 0 while hyper
    /// is waiting for the body instead.
    handed: Arc<AtomicU64>,
    watcher: tokio::task::JoinHandle<()>,
    _open: OpenStream,
}

impl Stream {
    pub(crate) fn new(inner: HyperOutgoingBody, open: OpenStream) -> Self {
        let handed = Arc::new(AtomicU64::new(0));
        let connection = open.0.clone();
        let watched = handed.clone();
        let watcher = tokio::spawn(async move {
            let timeout = connection.write_timeout;
            loop {
                let at = watched.load(Ordering::Relaxed);
                if at == 0 {
                    tokio::time::sleep(timeout).await;
                    continue;
                }
                let due = connection.began + Duration::from_nanos(at) + timeout;
                if Instant::now() >= due {
                    tracing::debug!(
                        "an HTTP/2 client read no response for --response-write-timeout"
                    );
                    connection.close("the client read nothing for `--response-write-timeout`");
                    return;
                }
                tokio::time::sleep_until(due).await;
            }
        });
        Self {
            inner,
            rest: None,
            handed,
            watcher,
            _open: open,
        }
    }
}

impl Body for Stream {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = match self.rest.take() {
            Some(mut rest) => {
                let piece = rest.split_to(rest.len().min(PIECE));
                self.rest = (!rest.is_empty()).then_some(rest);
                Poll::Ready(Some(Ok(Frame::data(piece))))
            }
            None => match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(match frame.into_data() {
                    Ok(mut data) if data.len() > PIECE => {
                        let piece = data.split_to(PIECE);
                        self.rest = Some(data);
                        Frame::data(piece)
                    }
                    Ok(data) => Frame::data(data),
                    Err(frame) => frame,
                }))),
                other => other,
            },
        };
        let handed = match &polled {
            Poll::Ready(Some(Ok(_))) => self._open.0.now().max(1),
            _ => 0,
        };
        self.handed.store(handed, Ordering::Relaxed);
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.inner.size_hint();
        let rest = self.rest.as_ref().map_or(0, |rest| rest.len() as u64);
        if rest > 0 {
            let upper = hint.upper();
            hint.set_lower(hint.lower() + rest);
            if let Some(upper) = upper {
                hint.set_upper(upper + rest);
            }
        }
        hint
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    const FIRST: Duration = Duration::from_secs(1);
    const IDLE: Duration = Duration::from_secs(10);

    /// A connection's bounded server side, and its client side.
    fn connection() -> (
        Arc<Connection>,
        Bounded<tokio::io::DuplexStream>,
        tokio::io::DuplexStream,
    ) {
        let (client, server) = tokio::io::duplex(1024);
        let state = Connection::new(FIRST, IDLE, IDLE);
        (state.clone(), Bounded::new(server, state), client)
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_is_cut_off_at_its_first_idle_bound() {
        let (_state, mut io, _client) = connection();
        let started = Instant::now();
        let read = io.read(&mut [0; 8]).await;
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), FIRST);
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_stream_holds_the_bound_off_and_its_end_rearms_it() {
        let (state, mut io, _client) = connection();
        let (stream, open) = state.stream();
        assert_eq!(open, 1);
        // With a stream open, nothing cuts the connection off.
        let waited = tokio::time::timeout(Duration::from_secs(60), io.read(&mut [0; 8])).await;
        assert!(waited.is_err(), "cut off with a stream open: {waited:?}");
        // Its end (here, on this task) arms the bound after a request: the longer one.
        let ended = Instant::now();
        drop(stream);
        let read = io.read(&mut [0; 8]).await;
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert_eq!(ended.elapsed(), IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn the_last_stream_ending_on_another_task_wakes_the_reader() {
        let (state, mut io, _client) = connection();
        let (stream, _) = state.stream();
        // The reader waits with no timer armed; the stream ends elsewhere a minute later.
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(stream);
        });
        let started = Instant::now();
        // Bounded, so that a reader left asleep fails here rather than hanging.
        let read = tokio::time::timeout(Duration::from_secs(3600), io.read(&mut [0; 8])).await;
        let read = read.expect("the reader was never woken to arm its bound");
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(60) + IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn sniffing_tells_the_protocol_and_hands_its_bytes_on() {
        for (sent, protocol) in [
            (&PREFACE[..], Protocol::Http2),
            (b"GET / HTTP/1.1\r\n", Protocol::Http1),
            (b"PRI * HTTP/1.1\r\n", Protocol::Http1),
        ] {
            let (_state, mut io, mut client) = connection();
            client.write_all(sent).await.unwrap();
            assert_eq!(io.sniff().await.unwrap(), protocol, "{sent:?}");
            let mut again = vec![0; sent.len()];
            io.read_exact(&mut again).await.unwrap();
            assert_eq!(again, sent, "what was sniffed is read again");
        }
    }
}
