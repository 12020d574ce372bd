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

/// What the handlers report.
pub trait Telemetry: Send + Sync {
    /// Links `span` to the trace the request's W3C `traceparent` header names, if any, or
    /// makes it a child of that trace if `continued` (its `tracestate` then goes on, up to
    /// W3C's bounds: 512 bytes and 32 members).
    fn client_trace(&self, span: &tracing::Span, headers: &HeaderMap, continued: bool);
    /// Writes `span`'s trace context into an outgoing request's headers (`traceparent`).
    fn propagate(&self, span: &tracing::Span, headers: &mut HeaderMap);
    /// A request began (requests in flight).
    fn request_started(&self);
    /// A request that began is no longer in flight (answered, or dropped with its client).
    fn request_ended(&self);
    /// A request was answered: its method ([`method_name`]), status, time until its response
    /// began, and protocol (`"1.1"`, `"2"`).
    fn request_answered(&self, method: &'static str, status: u16, seconds: f64, protocol: &str);
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

/// When what telemetry has buffered must have gone out, if a handler says (a server stopping
/// within `--shutdown-grace`); otherwise the front end's own bound applies.
static FLUSH_BY: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);

/// Telemetry is to be sent by `deadline` at the latest (the front end flushes it at exit).
pub fn flush_by(deadline: std::time::Instant) {
    *FLUSH_BY.lock().unwrap_or_else(|e| e.into_inner()) = Some(deadline);
}

/// The deadline a handler set with [`flush_by`], if any.
pub fn flush_deadline() -> Option<std::time::Instant> {
    *FLUSH_BY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A request method as telemetry names it: one of HTTP's own, or `_OTHER` (OpenTelemetry's
/// HTTP conventions), so that a client cannot make a new metric series per made-up method.
pub fn method_name(method: &hyper::Method) -> &'static str {
    use hyper::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => "_OTHER",
    }
}

/// `uri` as a log line or a span may show it: without user name and password, and without its
/// query (either may carry a secret to a log or a collector that should not have it). Every
/// URI and path worldhost logs or records goes through here.
pub fn redacted(uri: &hyper::Uri) -> String {
    let mut out = String::new();
    if let Some(scheme) = uri.scheme_str() {
        out.push_str(scheme);
        out.push_str("://");
    }
    if let Some(host) = uri.host() {
        out.push_str(host);
    }
    if let Some(port) = uri.port_u16() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(uri.path());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_recorded_urls() {
        let uri: hyper::Uri = "https://user:secret@example.com:8443/a/b?token=x"
            .parse()
            .unwrap();
        assert_eq!(redacted(&uri), "https://example.com:8443/a/b");
        assert_eq!(
            method_name(&hyper::Method::from_bytes(b"BREW").unwrap()),
            "_OTHER"
        );
        assert_eq!(method_name(&hyper::Method::PATCH), "PATCH");
    }
}
