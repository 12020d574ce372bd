//! Every answer the server gives itself, rather than its guest: one `Failure` for whatever kept a
//! guest from answering, whichever path served it (a fresh instance or a reused one), and one
//! mapping from it to the response the client gets.

use crate::stop::Stop;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Response, StatusCode};
use std::convert::Infallible;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use worldhost_core::telemetry::GuestFailure;

/// Why a request got no response from its guest; what it means was logged where it was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// It ran past `-W timeout`: 504.
    Timeout,
    /// No place for it, under `--max-concurrent-requests` or in the instance pool: 503.
    PoolFull,
    /// Something outside the guest stopped it (its body, its client): 413, 408 or 400, and the
    /// connection is closed, since the rest of the body was not read.
    Stopped(Stop),
    /// It trapped, failed, answered with an error, or returned without an answer: 500.
    Failed,
}

impl Failure {
    /// A guest that ran past `-W timeout`, told to the request's span and the metrics.
    pub(crate) fn timed_out() -> Self {
        guest_failed(GuestFailure::Timeout);
        Failure::Timeout
    }

    /// A guest that trapped, told to the request's span and the metrics.
    pub(crate) fn trapped() -> Self {
        guest_failed(GuestFailure::Trap);
        Failure::Failed
    }

    /// The response the client gets.
    pub(crate) fn response(self) -> Response<HyperOutgoingBody> {
        match self {
            Failure::Timeout => status(
                StatusCode::GATEWAY_TIMEOUT,
                "the request ran past its time limit\n",
            ),
            Failure::PoolFull => status(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many requests in flight\n",
            ),
            Failure::Stopped(why) => closing(match why {
                Stop::BodyTooLarge => {
                    status(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n")
                }
                Stop::BodyTimeout => status(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body stopped arriving (--body-read-timeout)\n",
                ),
                Stop::BodyTooSlow => status(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body arrived too slowly (--body-min-rate)\n",
                ),
                Stop::ClientGone => status(StatusCode::BAD_REQUEST, "the client went away\n"),
            }),
            Failure::Failed => status(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n"),
        }
    }
}

/// The answer to a request that names no host (HTTP/1.0 allows it; a guest is always given an
/// authority).
pub(crate) fn no_host() -> Response<HyperOutgoingBody> {
    closing(status(
        StatusCode::BAD_REQUEST,
        "the request names no host: send one Host header\n",
    ))
}

/// Tells the request's span and the metrics that its guest failed.
fn guest_failed(failure: GuestFailure) {
    let name = match failure {
        GuestFailure::Trap => "trap",
        GuestFailure::Timeout => "timeout",
    };
    tracing::Span::current().record("error.type", name);
    if let Some(telemetry) = worldhost_core::telemetry::get() {
        telemetry.guest_failed(failure);
    }
}

/// `response`, with the connection closed after it.
fn closing(mut response: Response<HyperOutgoingBody>) -> Response<HyperOutgoingBody> {
    response.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    response
}

/// A plain-text response with `code`.
fn status(code: StatusCode, text: &'static str) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never: Infallible| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = code;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        "text/plain; charset=utf-8".parse().expect("valid"),
    );
    response
}
