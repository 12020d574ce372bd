//! What the handlers tell telemetry, when it is on: the front end (`cli/`) installs an
//! implementation backed by OpenTelemetry when the `OTEL_*` variables ask for it, and nothing
//! otherwise, so that core and the handlers need no OpenTelemetry crate and a server without
//! telemetry pays one check of [`get`] where it would record.
//!
//! Spans are `tracing` spans (the front end's layer turns them into OpenTelemetry spans); what
//! `tracing` cannot carry, W3C trace context in HTTP headers and the metrics, goes through
//! [`Telemetry`].

use hyper::HeaderMap;
use std::sync::OnceLock;

/// How a request that failed in its guest failed, for the metrics and the span's `error.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestFailure {
    /// It trapped (or failed otherwise inside wasm).
    Trap,
    /// It ran past `-W timeout`.
    Timeout,
}

impl GuestFailure {
    /// The name in `error.type` and in the metric's attributes.
    pub fn name(self) -> &'static str {
        match self {
            GuestFailure::Trap => "trap",
            GuestFailure::Timeout => "timeout",
        }
    }
}

/// One answered request, for the metrics.
pub struct Answered<'a> {
    /// Its method (`GET`).
    pub method: &'a str,
    /// The status it was answered with.
    pub status: u16,
    /// How long it took, until its response began, in seconds.
    pub seconds: f64,
    /// `"1.1"` or `"2"`.
    pub protocol: &'static str,
}

/// What the handlers report.
pub trait Telemetry: Send + Sync {
    /// Makes `span` a child of the trace the request's W3C `traceparent` header names, if any.
    fn continue_trace(&self, span: &tracing::Span, headers: &HeaderMap);
    /// Writes `span`'s trace context into an outgoing request's headers (`traceparent`).
    fn propagate(&self, span: &tracing::Span, headers: &mut HeaderMap);
    /// A request began (requests in flight).
    fn request_started(&self);
    /// A request was answered.
    fn request_answered(&self, answered: &Answered<'_>);
    /// A guest failed a request.
    fn guest_failed(&self, failure: GuestFailure);
    /// An instance ended holding `bytes` of linear memory.
    fn instance_memory(&self, bytes: u64);
}

static INSTALLED: OnceLock<Box<dyn Telemetry>> = OnceLock::new();

/// Installs `telemetry` for the rest of the process; a second call is ignored.
pub fn install(telemetry: Box<dyn Telemetry>) {
    let _ = INSTALLED.set(telemetry);
}

/// The telemetry installed, if it is on.
pub fn get() -> Option<&'static dyn Telemetry> {
    INSTALLED.get().map(|t| &**t)
}
