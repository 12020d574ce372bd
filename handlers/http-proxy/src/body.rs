//! Bodies on their way in and out, and what stops a request from outside its guest.
//!
//! In: the request body, cut off at `--max-request-body-size` and when the client sends
//! nothing for `--body-read-timeout`. Either stops the request: the guest is dropped with its
//! store (its pool slot and its `--max-concurrent-requests` place freed), and the client gets
//! 413 or 408 if no response has begun, or a cut-off response otherwise. wasmtime-wasi-http
//! shows a failed body to the guest as the end of its stream, so without the stop a guest
//! would take a cut body for a whole one.
//!
//! Out: the guest's response body, which ends cleanly only if the guest's handler returned
//! cleanly and nothing stopped the request; otherwise it ends with an error, so hyper aborts
//! the response instead of finishing it, and the client sees it cut off. A response body that
//! hyper drops before its end (the client went away, or stopped reading past
//! `--response-write-timeout`) stops the request too.

use bytes::Bytes;
use http_body_util::Limited;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use wasmtime_wasi_http::Error;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// Why a request was stopped from outside its guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Its body ran past `--max-request-body-size`.
    BodyTooLarge,
    /// Its client sent no body bytes for `--body-read-timeout`.
    BodyTimeout,
    /// Its client went away, or did not read the response (`--response-write-timeout`).
    ClientGone,
}

/// Stops one request: set by its bodies, awaited by its guest's task.
#[derive(Clone)]
pub(crate) struct Stopper(Arc<watch::Sender<Option<Stop>>>);

impl Stopper {
    pub(crate) fn new() -> Self {
        Self(Arc::new(watch::Sender::new(None)))
    }

    /// Stops the request, for the first reason given.
    pub(crate) fn stop(&self, why: Stop) {
        self.0.send_if_modified(|stop| {
            let first = stop.is_none();
            if first {
                *stop = Some(why);
            }
            first
        });
    }

    /// Why the request was stopped, if it was.
    pub(crate) fn stopped(&self) -> Option<Stop> {
        *self.0.borrow()
    }

    /// Resolves once the request is stopped.
    pub(crate) fn wait(&self) -> impl Future<Output = Stop> + Send + 'static {
        let mut receiver = self.0.subscribe();
        async move {
            let stop = receiver.wait_for(Option::is_some).await.map(|stop| *stop);
            match stop {
                Ok(stop) => stop.expect("waited for"),
                // Every sender is gone: nothing can stop the request any more.
                Err(_) => std::future::pending().await,
            }
        }
    }
}

/// The request body as the guest reads it: at most `limit` bytes, and never a wait of more
/// than `idle` for the next bytes; past either, the request is stopped (before the guest is
/// given the error, so that whatever it does after is too late to count).
pub(crate) struct RequestBody {
    inner: Limited<Incoming>,
    limit: u64,
    idle: Duration,
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
    stopper: Stopper,
}

impl RequestBody {
    pub(crate) fn new(body: Incoming, limit: u64, idle: Duration, stopper: Stopper) -> Self {
        Self {
            inner: Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX)),
            limit,
            idle,
            waiting: None,
            stopper,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = None;
                Poll::Ready(frame.map(|frame| {
                    frame.map_err(|e| match e.downcast::<hyper::Error>() {
                        Ok(e) => Error::from(*e),
                        Err(_) => {
                            this.stopper.stop(Stop::BodyTooLarge);
                            Error::HttpRequestBodySize(Some(this.limit))
                        }
                    })
                }))
            }
            Poll::Pending => {
                let idle = this.idle;
                let waiting = this
                    .waiting
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                ready!(waiting.as_mut().poll(cx));
                this.stopper.stop(Stop::BodyTimeout);
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// How the guest's handler ended.
pub(crate) type Outcome = Result<(), Failure>;

/// Why a guest's handler did not end cleanly; each carries what was logged.
#[derive(Debug)]
pub(crate) enum Failure {
    /// It ran past `-W timeout`.
    Timeout,
    /// The instance pool had no room for it.
    PoolFull,
    /// Something outside the guest stopped it.
    Stopped(Stop),
    /// It trapped or failed otherwise.
    Failed,
}

/// A response body that ends the way the guest's handler ended.
pub(crate) struct Guarded {
    inner: HyperOutgoingBody,
    outcome: Option<oneshot::Receiver<Outcome>>,
    stopper: Stopper,
}

impl Guarded {
    pub(crate) fn new(
        inner: HyperOutgoingBody,
        outcome: oneshot::Receiver<Outcome>,
        stopper: Stopper,
    ) -> Self {
        Self {
            inner,
            outcome: Some(outcome),
            stopper,
        }
    }
}

impl Body for Guarded {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if let Some(frame) = ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            return Poll::Ready(Some(frame));
        }
        // The guest's body is complete: whether the response is, depends on the guest.
        let Some(outcome) = self.outcome.as_mut() else {
            return Poll::Ready(None);
        };
        let result = ready!(Pin::new(outcome).poll(cx));
        self.outcome = None;
        Poll::Ready(match result {
            Ok(Ok(())) if self.stopper.stopped().is_none() => None,
            // A failed or stopped guest, or one whose task vanished: cut the response off.
            _ => Some(Err(Error::ConnectionTerminated)),
        })
    }

    fn is_end_stream(&self) -> bool {
        self.outcome.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // Dropped before the guest was done: nobody will read what it writes.
        if self.outcome.is_some() {
            self.stopper.stop(Stop::ClientGone);
        }
    }
}
