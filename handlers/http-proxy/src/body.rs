//! Bodies on their way in and out. In: the request body, cut off at `--max-request-body-size`.
//! Out: the guest's response body, which ends cleanly only if the guest's handler returned
//! cleanly; a trap after the headers were sent ends the body with an error, so hyper aborts
//! the response instead of finishing it, and the client sees it cut off.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::sync::oneshot;
use wasmtime_wasi_http::Error;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// The request body, at most `limit` bytes; past it, reading fails for the guest.
pub(crate) fn limited(
    body: Incoming,
    limit: u64,
) -> impl Body<Data = Bytes, Error = Error> + Send + 'static {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    Limited::new(body, limit).map_err(move |e| match e.downcast::<hyper::Error>() {
        Ok(e) => Error::from(*e),
        Err(_) => Error::HttpRequestBodySize(Some(limit as u64)),
    })
}

/// How the guest's handler ended: `Err` with what to log when it failed.
pub(crate) type Outcome = Result<(), String>;

/// A response body that ends the way the guest's handler ended.
pub(crate) struct Guarded {
    inner: HyperOutgoingBody,
    outcome: Option<oneshot::Receiver<Outcome>>,
}

impl Guarded {
    pub(crate) fn new(inner: HyperOutgoingBody, outcome: oneshot::Receiver<Outcome>) -> Self {
        Self {
            inner,
            outcome: Some(outcome),
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
            Ok(Ok(())) => None,
            // A failed guest, or one whose task vanished: cut the response off.
            Ok(Err(_)) | Err(_) => Some(Err(Error::ConnectionTerminated)),
        })
    }

    fn is_end_stream(&self) -> bool {
        self.outcome.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

use std::future::Future as _;
