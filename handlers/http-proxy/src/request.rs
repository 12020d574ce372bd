//! One request: its host checked, its place under `--max-concurrent-requests` taken (or a 503),
//! its span, metrics and access-log line, its body bounded and `-H`'s headers added; then the
//! runner answers it (`Runner::respond`), and a failure becomes its status (`answer`).

use crate::answer::{self, Failure};
use crate::args::ClientTrace;
use crate::body::RequestBody;
use crate::conn::{Connection, Stream};
use crate::runner::Runner;
use crate::state::Server;
use crate::stop::{Stop, Stopper};
use crate::wait::pressed;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument as _;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// Answers one request; fails only to refuse an HTTP/2 stream past the connection's share
/// of requests (hyper resets it with REFUSED_STREAM); every other error becomes a status and a
/// log line (hyper would drop the connection).
pub(crate) async fn handle(
    server: Arc<Server>,
    request: Request<Incoming>,
    connection: Arc<Connection>,
) -> Result<Response<HyperOutgoingBody>, h2::Error> {
    let started = Instant::now();
    // An HTTP/2 stream is open (its connection not idle) until its response is done.
    let stream = match request.version() {
        hyper::Version::HTTP_2 => {
            let (stream, open) = connection.stream();
            // Past its share only while places are short: a load balancer's few connections
            // carry many streams, and are refused nothing while there is room.
            if open > server.args.share() && server.requests_pressed() {
                tracing::debug!("an HTTP/2 stream past --max-requests-per-connection: refused");
                return Err(h2::Error::from(h2::Reason::REFUSED_STREAM));
            }
            Some(stream)
        }
        _ => {
            connection.http1_request();
            None
        }
    };
    let method = request.method().clone();
    // Logged without its query, which may carry a secret (a token, a password), as every
    // URI worldhost logs or records.
    let path = worldhost_core::telemetry::redacted(request.uri());
    tracing::debug!(%method, %path, "request received");
    // The code that answers: new requests go to a reloaded version, this one stays on it.
    let runner = server.runner();
    let version = runner.version.get().map_or("", String::as_str);
    let protocol = if stream.is_some() { "2" } else { "1.1" };
    // OpenTelemetry's HTTP server conventions (a root linked to the client's `traceparent`, or
    // its child: `--trace-context`); its fields are only computed when a subscriber wants the
    // span.
    let method_name = worldhost_core::telemetry::method_name(&method);
    let span = tracing::trace_span!(
        parent: None,
        "request",
        otel.name = if method_name == "_OTHER" { "HTTP" } else { method_name },
        otel.kind = "server",
        http.request.method = method_name,
        url.path = request.uri().path(),
        url.scheme = if server.tls.is_some() { "https" } else { "http" },
        network.protocol.version = protocol,
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
        worldhost.component.version = version,
    );
    let telemetry = worldhost_core::telemetry::get();
    // In flight until answered, or until hyper drops this future (its client went away).
    let _in_flight = telemetry.map(|telemetry| {
        match server.args.trace_context {
            ClientTrace::Ignore => {}
            how => telemetry.client_trace(&span, request.headers(), how == ClientTrace::Continue),
        }
        telemetry.request_started();
        InFlight(telemetry)
    });
    let answer = async {
        if !names_its_host(&request) {
            return answer::no_host();
        }
        match server.permits.clone().try_acquire_owned() {
            Ok(permit) => respond(&server, &runner, request, permit).await,
            Err(_) => {
                tracing::warn!(%method, %path, "too many requests in flight (--max-concurrent-requests)");
                Failure::PoolFull.response()
            }
        }
    };
    // Entered on every poll only when something wants the span (telemetry).
    let response = match span.is_disabled() {
        true => answer.await,
        false => answer.instrument(span.clone()).await,
    };
    let code = response.status().as_u16();
    let elapsed = started.elapsed();
    span.record("http.response.status_code", code);
    if let Some(telemetry) = telemetry {
        telemetry.request_answered(method_name, code, elapsed.as_secs_f64(), protocol);
    }
    tracing::info!(
        %method,
        %path,
        status = code,
        ?elapsed,
        version = %version,
        "request"
    );
    Ok(match stream {
        Some(stream) => response.map(|body| Stream::new(body, stream).boxed_unsync()),
        None => response,
    })
}

/// A request in flight, for the metrics.
struct InFlight(&'static dyn worldhost_core::telemetry::Telemetry);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// Whether the request names one host: an authority in its URI, or one readable Host header
/// (RFC 9112 §3.2: a request with more than one is a 400).
fn names_its_host(request: &Request<Incoming>) -> bool {
    let mut hosts = request.headers().get_all(hyper::header::HOST).iter();
    let first = hosts.next();
    if hosts.next().is_some() {
        return false;
    }
    request.uri().authority().is_some() || first.is_some_and(|host| host.to_str().is_ok())
}

/// The headers of `-H`: a request's own of the same names are replaced, and a name given
/// more than once keeps every value (as wasmtime serve does).
fn add_headers(
    headers: &mut hyper::HeaderMap,
    added: &[(hyper::header::HeaderName, hyper::header::HeaderValue)],
) {
    for (name, _) in added {
        headers.remove(name);
    }
    for (name, value) in added {
        headers.append(name, value.clone());
    }
}

/// Answers `request` from `runner` while it holds its place: its body bounded, `-H`'s headers
/// added, and the guest stopped should the client go away first.
async fn respond(
    server: &Server,
    runner: &Runner,
    request: Request<Incoming>,
    permit: OwnedSemaphorePermit,
) -> Response<HyperOutgoingBody> {
    let too_long = request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|n| n > server.args.max_request_body_size);
    if too_long {
        return Failure::Stopped(Stop::BodyTooLarge).response();
    }
    let stopper = Stopper::new();
    // Hyper drops this future when the client goes away before the response: the guest,
    // which nobody waits for then, is stopped.
    let mut stop_on_drop = StopOnDrop(Some(stopper.clone()));
    let (mut parts, body) = request.into_parts();
    add_headers(&mut parts.headers, &server.headers);
    let body = RequestBody::new(
        body,
        server.args.max_request_body_size,
        match server.requests_pressed() {
            true => pressed(server.args.body_read_timeout),
            false => server.args.body_read_timeout,
        },
        server.args.body_min_rate,
        stopper.clone(),
    );
    let request = Request::from_parts(parts, body);
    let answered = runner.respond(request, permit, &stopper).await;
    stop_on_drop.0 = None;
    answered.unwrap_or_else(Failure::response)
}

/// Stops a request when dropped, unless disarmed (`.0 = None`).
struct StopOnDrop(Option<Stopper>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(stopper) = &self.0 {
            stopper.stop(Stop::ClientGone);
        }
    }
}
