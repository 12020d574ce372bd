//! Bodies on their way in and out.
//!
//! In: the request body, cut off at `--max-request-body-size`, when the client sends nothing
//! for `--body-read-timeout`, and when it sends slower than `--body-min-rate` over the whole
//! body (the time the guest waited for it, past a first `--body-read-timeout`: Apache's
//! `MinRate`). Each stops the request: the guest is dropped with its store (its pool slot and
//! its `--max-concurrent-requests` place freed), and the client gets 413 or 408 if no response
//! has begun, or a cut-off response otherwise. The guest is never
//! shown the failure (its read just waits until it is dropped): a guest that took a failed
//! read for the end of its body would answer a cut body as a whole one, and one that went on
//! could send what it had read on.
//!
//! Out: the guest's response body, which ends cleanly only if the guest's handler returned
//! cleanly and nothing stopped the request; otherwise it ends with an error, so hyper aborts
//! the response instead of finishing it, and the client sees it cut off. A response body that
//! hyper drops before all of it went out (the client went away, or stopped reading past
//! `--response-write-timeout`) stops the request too; one dropped because it was complete
//! (its `Content-Length` sent, or none due: HEAD, 204, 304) does not, so a guest may go on
//! working after its response.

use crate::answer::Failure;
use crate::stop::{Stop, Stopper};
use crate::wait::{IdleBound, Past};
use bytes::Bytes;
use http_body_util::Limited;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::collections::VecDeque;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::sync::oneshot;
use wasmtime_wasi_http::Error;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// The request body as the guest reads it: at most `limit` bytes, never a wait of more than
/// `idle` for the next bytes, and on the whole at least `rate` bytes a second of the time the
/// guest waited for them (after a first `idle`); past any, the request is stopped (before the
/// guest is given the error, so that whatever it does after is too late to count).
pub(crate) struct RequestBody {
    inner: Limited<Incoming>,
    idle: IdleBound,
    stopper: Stopper,
}

impl RequestBody {
    pub(crate) fn new(
        body: Incoming,
        limit: u64,
        idle: Duration,
        rate: u64,
        stopper: Stopper,
    ) -> Self {
        Self {
            inner: Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX)),
            idle: IdleBound::new(idle).with_rate(rate),
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
        // Once stopped, the guest waits until its task drops it, and never learns why.
        if this.stopper.stopped().is_some() {
            return Poll::Pending;
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => match e.downcast::<hyper::Error>() {
                Ok(e) => Poll::Ready(Some(Err(Error::from(*e)))),
                Err(_) => {
                    this.stopper.stop(Stop::BodyTooLarge);
                    Poll::Pending
                }
            },
            Poll::Ready(Some(Ok(frame))) => {
                let bytes = frame.data_ref().map_or(0, |data| data.len() as u64);
                this.idle.progressed(bytes);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let past = ready!(this.idle.poll_waited_out(cx));
                this.stopper.stop(match past {
                    Past::Wait => Stop::BodyTimeout,
                    Past::Rate => Stop::BodyTooSlow,
                });
                Poll::Pending
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

/// A response body that ends the way the guest's handler ended.
pub(crate) struct Guarded {
    inner: HyperOutgoingBody,
    outcome: Option<oneshot::Receiver<Outcome>>,
    stopper: Stopper,
    /// Body bytes hyper is still to take, when the response says how many (`Content-Length`,
    /// or 0 for a response without a body); `None` for a chunked one, complete only at its end.
    due: Option<u64>,
}

impl Guarded {
    /// `due`: see the field.
    pub(crate) fn new(
        inner: HyperOutgoingBody,
        outcome: oneshot::Receiver<Outcome>,
        stopper: Stopper,
        due: Option<u64>,
    ) -> Self {
        Self {
            inner,
            outcome: Some(outcome),
            stopper,
            due,
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
            if let (Ok(frame), Some(due)) = (&frame, &mut self.due) {
                let sent = frame.data_ref().map_or(0, |data| data.len() as u64);
                *due = due.saturating_sub(sent);
            }
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
        // Dropped before all of the response went out, and before the guest was done: the
        // client is gone, and nobody will read what the guest writes.
        if self.outcome.is_some() && self.due != Some(0) {
            self.stopper.stop(Stop::ClientGone);
        }
    }
}

/// How many scheduler turns a reused instance's response waits for the rest of its body
/// before its head goes out (see [`Held::gather`]).
const GATHER_TURNS: usize = 2;

/// The most of a body [`Held::gather`] keeps before its head goes out.
const GATHER_BYTES: u64 = 64 * 1024;

/// A response body that holds its request's place under `--max-concurrent-requests` until it
/// has gone out or was dropped (a reused instance answers from its own task); the frames its
/// guest had ready when the response began go first.
pub(crate) struct Held {
    ready: VecDeque<Result<Frame<Bytes>, Error>>,
    /// The rest; `None` once it has ended.
    inner: Option<HyperOutgoingBody>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Held {
    /// Waits a few scheduler turns for the rest of the body (at most [`GATHER_BYTES`] of it),
    /// so that a response whose body ends in that time goes out in one write, with a
    /// `Content-Length`. A 0.3 guest returns its response before it has finished the body's
    /// stream, and the end comes from its instance's task a moment later: hyper, finding the
    /// body not ready after the first frame, would send the head and that frame at once and
    /// the end in a second segment (measured: 1.4 writes per request under load, each one
    /// costing the server and the client a pass through the TCP stack). A body that is still
    /// being written after those turns streams as before.
    pub(crate) async fn gather(
        inner: HyperOutgoingBody,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Self {
        let mut held = Held {
            ready: VecDeque::new(),
            inner: Some(inner),
            _permit: permit,
        };
        let (mut turns, mut size) = (0, 0);
        while let Some(body) = held.inner.as_mut() {
            let polled =
                std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *body).poll_frame(cx))).await;
            match polled {
                Poll::Ready(None) => held.inner = None,
                Poll::Ready(Some(frame)) => {
                    let failed = frame.is_err();
                    size += data_len(&frame).unwrap_or(0);
                    held.ready.push_back(frame);
                    if failed || size >= GATHER_BYTES {
                        break;
                    }
                }
                Poll::Pending if turns < GATHER_TURNS => {
                    turns += 1;
                    tokio::task::yield_now().await;
                }
                Poll::Pending => break,
            }
        }
        held
    }
}

/// The length of a frame's data; `None` for trailers or an error.
fn data_len(frame: &Result<Frame<Bytes>, Error>) -> Option<u64> {
    Some(frame.as_ref().ok()?.data_ref()?.len() as u64)
}

impl Body for Held {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if let Some(frame) = self.ready.pop_front() {
            return Poll::Ready(Some(frame));
        }
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = ready!(Pin::new(inner).poll_frame(cx));
        if frame.is_none() {
            self.inner = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.ready.is_empty() && self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let buffered: u64 = self.ready.iter().filter_map(data_len).sum();
        match &self.inner {
            Some(rest) => rest.size_hint() + SizeHint::with_exact(buffered),
            // All of it gathered: hyper sends it with a Content-Length.
            None if self.ready.iter().all(|frame| data_len(frame).is_some()) => {
                SizeHint::with_exact(buffered)
            }
            // Trailers or an error among the frames: not a known length, so hyper keeps
            // chunked encoding (trailers need it; an error must cut the response off).
            None => {
                let mut hint = SizeHint::new();
                hint.set_lower(buffered);
                hint
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt as _, Full};
    use std::sync::Arc;

    fn body(text: &'static str) -> HyperOutgoingBody {
        Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|never: std::convert::Infallible| match never {})
            .boxed_unsync()
    }

    /// A `Guarded` body of `text`, its handler's outcome to be sent, and its request's stopper.
    fn guarded(
        text: &'static str,
        due: Option<u64>,
    ) -> (Guarded, oneshot::Sender<Outcome>, Stopper) {
        let (done, outcome) = oneshot::channel();
        let stopper = Stopper::new();
        (
            Guarded::new(body(text), outcome, stopper.clone(), due),
            done,
            stopper,
        )
    }

    #[tokio::test]
    async fn a_guarded_body_ends_as_its_guest_did() {
        let (clean, done, _) = guarded("hello", Some(5));
        done.send(Ok(())).unwrap();
        assert_eq!(clean.collect().await.unwrap().to_bytes(), "hello");
        // A guest that failed after its body's bytes: the response is cut off, not complete.
        let (failed, done, _) = guarded("hello", None);
        done.send(Err(Failure::Failed)).unwrap();
        assert!(failed.collect().await.is_err());
        // One whose task vanished, likewise.
        let (vanished, done, _) = guarded("hello", None);
        drop(done);
        assert!(vanished.collect().await.is_err());
    }

    #[tokio::test]
    async fn a_guarded_body_dropped_early_stops_its_request_and_a_complete_one_does_not() {
        let (early, _done, stopper) = guarded("hello", Some(5));
        drop(early);
        assert_eq!(stopper.stopped(), Some(Stop::ClientGone));
        // A HEAD response (nothing due) dropped before its guest ended: its guest goes on.
        let (head, _done, stopper) = guarded("", Some(0));
        drop(head);
        assert_eq!(stopper.stopped(), None);
    }

    #[tokio::test]
    async fn a_held_body_gathers_what_is_ready_and_holds_its_place_until_dropped() {
        let places = Arc::new(tokio::sync::Semaphore::new(1));
        let permit = places.clone().try_acquire_owned().unwrap();
        let held = Held::gather(body("hello"), permit).await;
        assert_eq!(
            held.size_hint().exact(),
            Some(5),
            "gathered whole: a known length"
        );
        assert_eq!(places.available_permits(), 0, "its place is held");
        assert_eq!(held.collect().await.unwrap().to_bytes(), "hello");
        assert_eq!(
            places.available_permits(),
            1,
            "its place is free once it has gone out"
        );
    }
}
