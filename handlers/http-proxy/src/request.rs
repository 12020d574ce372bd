//! One request: a fresh store and instance from the pre-instantiated component, the guest's
//! `handle` run in a task of its own, and its response (or a 400, 408, 413, 500, 503, 504)
//! returned to hyper. Whatever the guest or its client does, the fault stays in this request;
//! it is logged with the trap.

use crate::body::{Failure, Guarded, Outcome, RequestBody, Stop, Stopper};
use crate::conn::{Connection, Stream};
use crate::server::{Runner, Server, Serving};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tracing::Instrument as _;
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use worldhost_core::telemetry::{Answered, GuestFailure};
use worldhost_core::{Cause, Host};

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
        telemetry.client_trace(&span, request.headers(), server.args.trace_context);
        telemetry.request_started();
        InFlight(telemetry)
    });
    let answer = async {
        if !names_its_host(&request) {
            // HTTP/1.0 allows a request without one; a guest is always given an authority.
            return closing(status(
                StatusCode::BAD_REQUEST,
                "the request names no host: send one Host header\n",
            ));
        }
        match server.permits.clone().try_acquire_owned() {
            Ok(permit) => respond(&server, &runner, request, permit).await,
            Err(_) => {
                tracing::warn!(%method, %path, "too many requests in flight (--max-concurrent-requests)");
                too_many_requests()
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
        telemetry.request_answered(&Answered {
            method: method_name,
            status: code,
            seconds: elapsed.as_secs_f64(),
            protocol,
        });
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

async fn respond(
    server: &Server,
    runner: &Arc<Runner>,
    request: Request<Incoming>,
    permit: OwnedSemaphorePermit,
) -> Response<HyperOutgoingBody> {
    let too_long = request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|n| n > server.args.max_request_body_size);
    if too_long {
        return stopped(Stop::BodyTooLarge);
    }
    let stopper = Stopper::new();
    // Hyper drops this future when the client goes away before the response: the guest,
    // which nobody waits for then, is stopped.
    let mut stop_on_drop = StopOnDrop(Some(stopper.clone()));
    let (mut parts, body) = request.into_parts();
    let head = parts.method == hyper::Method::HEAD;
    add_headers(&mut parts.headers, &server.headers);
    let body = RequestBody::new(
        body,
        server.args.max_request_body_size,
        match server.requests_pressed() {
            true => crate::server::pressed(server.args.body_read_timeout),
            false => server.args.body_read_timeout,
        },
        server.args.body_min_rate,
        stopper.clone(),
    );
    let request = Request::from_parts(parts, body);

    let pre = match &runner.serving {
        Serving::Reused(dispatch) => {
            let response =
                crate::service::respond(server, dispatch, request, permit, &stopper).await;
            stop_on_drop.0 = None;
            return response;
        }
        Serving::Fresh(pre) => pre.clone(),
    };
    let response = match start(server, runner.clone(), pre, request, permit, &stopper) {
        Ok((response, done)) => match response.await {
            // The guest answered, but its request was stopped first (its body cut off, say):
            // it answered a request it did not read whole.
            Ok(_) if stopper.stopped().is_some() => stopped(stopper.stopped().expect("checked")),
            Ok(Ok(response)) => {
                let due = body_due(head, &response);
                response.map(|body| Guarded::new(body, done, stopper.clone(), due).boxed_unsync())
            }
            Ok(Err(code)) => {
                tracing::error!("`{}` answered with an error: {code:?}", server.name);
                status(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n")
            }
            // The guest's handler ended without setting a response: `done` says why (a
            // failure was logged where it happened).
            Err(_) => match done.await {
                Ok(Err(Failure::Timeout)) => status(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the request ran past its time limit\n",
                ),
                Ok(Err(Failure::PoolFull)) => too_many_requests(),
                Ok(Err(Failure::Stopped(why))) => stopped(why),
                Ok(Err(Failure::Failed)) => {
                    status(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n")
                }
                Ok(Ok(())) => {
                    tracing::error!("`{}` returned without setting a response", server.name);
                    status(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n")
                }
                Err(_) => {
                    tracing::error!("the task running `{}` ended abnormally", server.name);
                    status(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n")
                }
            },
        },
        Err(e) => {
            tracing::error!("cannot start `{}`: {e:#}", server.name);
            status(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n")
        }
    };
    stop_on_drop.0 = None;
    response
}

/// How many body bytes `response` is to send, when that is known: none for a HEAD request's,
/// a 204 or a 304, its `Content-Length` otherwise; `None` for a chunked one.
fn body_due(head: bool, response: &Response<HyperOutgoingBody>) -> Option<u64> {
    let status = response.status();
    if head || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Some(0);
    }
    response
        .headers()
        .get(hyper::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
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

/// The answer to a request stopped before its response began; the connection is closed, since
/// the rest of its body was not read.
pub(crate) fn stopped(why: Stop) -> Response<HyperOutgoingBody> {
    closing(match why {
        Stop::BodyTooLarge => status(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n"),
        Stop::BodyTimeout => status(
            StatusCode::REQUEST_TIMEOUT,
            "the request body stopped arriving (--body-read-timeout)\n",
        ),
        Stop::BodyTooSlow => status(
            StatusCode::REQUEST_TIMEOUT,
            "the request body arrived too slowly (--body-min-rate)\n",
        ),
        Stop::ClientGone => status(StatusCode::BAD_REQUEST, "the client went away\n"),
    })
}

/// The documented answer past `--max-concurrent-requests` (or past what the instance pool holds).
pub(crate) fn too_many_requests() -> Response<HyperOutgoingBody> {
    status(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many requests in flight\n",
    )
}

/// `response`, with the connection closed after it.
fn closing(mut response: Response<HyperOutgoingBody>) -> Response<HyperOutgoingBody> {
    response.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    response
}

type ResponseReceiver = oneshot::Receiver<
    Result<Response<HyperOutgoingBody>, wasmtime_wasi_http::p2::bindings::http::types::ErrorCode>,
>;

/// Starts the guest on `request`, a fresh instance from `pre` (the runner's): returns where its
/// response will arrive, and where the outcome of its handler will. The permit is held until
/// the guest's handler has returned (or was stopped by `stopper`), not just until the headers
/// are ready.
fn start(
    server: &Server,
    runner: Arc<Runner>,
    pre: ProxyPre<Host>,
    request: Request<
        impl hyper::body::Body<Data = Bytes, Error = wasmtime_wasi_http::Error> + Send + 'static,
    >,
    permit: OwnedSemaphorePermit,
    stopper: &Stopper,
) -> anyhow::Result<(ResponseReceiver, oneshot::Receiver<Outcome>)> {
    let mut store = runner
        .guest
        .store_with((), |wasi| server.instances.wasi(wasi))?;
    let (response_tx, response_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let incoming = store.data_mut().http().new_incoming_request(
        match server.tls {
            Some(_) => Scheme::Https,
            None => Scheme::Http,
        },
        request,
    )?;
    let out = store.data_mut().http().new_response_outparam(response_tx)?;
    let name = server.name.clone();
    let limits = server.settings.limits;
    let stop = stopper.wait();
    let stopper = stopper.clone();
    let guest = async move {
        let run = async {
            let proxy = pre
                .instantiate_async(&mut store)
                .instrument(tracing::trace_span!("instantiate"))
                .await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, out)
                .await
        };
        // `-W timeout` interrupts running wasm through the epoch; a guest that waits instead
        // (a sleep, a slow outgoing request) is stopped by the same deadline on the clock.
        let run = async {
            match limits.timeout {
                Some(deadline) => tokio::time::timeout(deadline, run)
                    .await
                    .unwrap_or_else(|_| Err(wasmtime::Trap::Interrupt.into())),
                None => run.await,
            }
        };
        let ended = tokio::select! {
            result = run => Ok(result),
            why = stop => Err(why),
        };
        // A request stopped from outside counts as stopped, even when its guest ended first
        // (a guest whose client went away mid-response may fail on its next write).
        let outcome = match (ended, stopper.stopped()) {
            (Err(why), _) | (Ok(Err(_)), Some(why)) => {
                tracing::debug!("`{name}` stopped: {why:?}");
                Err(Failure::Stopped(why))
            }
            (Ok(result), _) => result.map_err(|e| classify(&name, e, &runner, &store)),
        };
        // Reported before the store (and with it the response body) is dropped, so the body
        // knows how to end.
        let _ = done_tx.send(outcome);
        if let Some(telemetry) = worldhost_core::telemetry::get() {
            use worldhost_core::store::Limited as _;
            let bytes = store.data_mut().limiter().memory_bytes();
            telemetry.instance_memory(u64::try_from(bytes).unwrap_or(u64::MAX));
        }
        drop(store);
        drop(permit);
    };
    // In the request's span, if one is recorded: its instantiation and outgoing requests are
    // the request's.
    let span = tracing::Span::current();
    match span.is_disabled() {
        true => drop(tokio::spawn(guest)),
        false => drop(tokio::spawn(guest.instrument(span))),
    }
    Ok((response_rx, done_rx))
}

/// Tells the request's span and the metrics that its guest failed.
pub(crate) fn guest_failed(failure: GuestFailure) {
    tracing::Span::current().record("error.type", failure.name());
    if let Some(telemetry) = worldhost_core::telemetry::get() {
        telemetry.guest_failed(failure);
    }
}

/// What a guest's error means for its request; the failure is logged here.
fn classify(
    name: &str,
    error: wasmtime::Error,
    runner: &crate::server::Runner,
    store: &Store<Host>,
) -> Failure {
    if let Some(full) = error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
        tracing::warn!(
            "no room in the instance pool for another `{name}` ({full}); answered 503 (see \
             --max-concurrent-requests)"
        );
        return Failure::PoolFull;
    }
    match runner.guest.classify(store, error) {
        Ok(exit) => {
            tracing::error!("{}", exit.summary());
            let (failure, failed) = match exit.cause {
                Cause::Timeout(_) => (Failure::Timeout, GuestFailure::Timeout),
                _ => (Failure::Failed, GuestFailure::Trap),
            };
            guest_failed(failed);
            failure
        }
        Err(e) => {
            tracing::error!("`{name}` failed: {:#}", anyhow::Error::from(e));
            Failure::Failed
        }
    }
}

/// A plain-text response with `code`.
pub(crate) fn status(code: StatusCode, text: &'static str) -> Response<HyperOutgoingBody> {
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
