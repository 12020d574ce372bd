//! One request: a fresh store and instance from the pre-instantiated component, the guest's
//! `handle` run in a task of its own, and its response (or a 500, 503, 504) returned to hyper.
//! Whatever the guest does, the fault stays in this request; it is logged with the trap.

use crate::body::{Guarded, Outcome, limited};
use crate::host::{ServeHost, new_store};
use crate::server::Server;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use worldhost_core::outcome::trap_message;

/// Answers one request; never fails (hyper would drop the connection), so every error becomes
/// a status and a log line.
pub(crate) async fn handle(
    server: Arc<Server>,
    request: Request<Incoming>,
) -> Result<Response<HyperOutgoingBody>, Infallible> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_string(), |p| p.to_string());
    tracing::debug!(%method, %path, "request received");
    let response = match server.permits.clone().try_acquire_owned() {
        Ok(permit) => respond(&server, request, permit).await,
        Err(_) => {
            tracing::warn!(%method, %path, "too many requests in flight (--max-concurrent-requests)");
            status(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many requests in flight\n",
            )
        }
    };
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        elapsed = ?started.elapsed(),
        "request"
    );
    Ok(response)
}

async fn respond(
    server: &Server,
    request: Request<Incoming>,
    permit: OwnedSemaphorePermit,
) -> Response<HyperOutgoingBody> {
    let too_long = request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|n| n > server.args.max_request_body_size);
    if too_long {
        return status(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
    }
    let (parts, body) = request.into_parts();
    let request = Request::from_parts(parts, limited(body, server.args.max_request_body_size));

    match start(server, request, permit) {
        Ok((response, done)) => match response.await {
            Ok(Ok(response)) => response.map(|body| Guarded::new(body, done).boxed_unsync()),
            Ok(Err(code)) => {
                tracing::error!("`{}` answered with an error: {code:?}", server.name);
                status(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n")
            }
            // The guest's handler ended without setting a response: `done` says why (a
            // failure was logged where it happened).
            Err(_) => match done.await {
                Ok(Err(why)) if why.contains("-W timeout") => status(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the request ran past its time limit\n",
                ),
                Ok(Err(_)) => status(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n"),
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
    }
}

type ResponseReceiver = oneshot::Receiver<
    Result<Response<HyperOutgoingBody>, wasmtime_wasi_http::p2::bindings::http::types::ErrorCode>,
>;

/// Starts the guest on `request`: returns where its response will arrive, and where the outcome
/// of its handler will. The permit is held until the guest's handler has returned, not just
/// until the headers are ready.
fn start(
    server: &Server,
    request: Request<
        impl hyper::body::Body<Data = Bytes, Error = wasmtime_wasi_http::Error> + Send + 'static,
    >,
    permit: OwnedSemaphorePermit,
) -> anyhow::Result<(ResponseReceiver, oneshot::Receiver<Outcome>)> {
    let runner = server.runner();
    let mut store: Store<ServeHost> = new_store(
        runner.pre.engine(),
        &server.settings,
        &server.name,
        &server.outgoing,
    )?;
    let (response_tx, response_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let incoming = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, request)?;
    let out = store.data_mut().http().new_response_outparam(response_tx)?;
    let name = server.name.clone();
    let limits = server.settings.limits;
    let guest = async move {
        let run = async {
            let proxy = runner.pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, out)
                .await
        };
        // `-W timeout` interrupts running wasm through the epoch; a guest that waits instead
        // (a sleep, a slow outgoing request) is stopped by the same deadline on the clock.
        let result = match limits.timeout {
            Some(deadline) => tokio::time::timeout(deadline, run)
                .await
                .unwrap_or_else(|_| Err(wasmtime::Trap::Interrupt.into())),
            None => run.await,
        };
        let outcome = result.map_err(|e| describe_failure(&name, e, &limits, &store));
        if let Err(why) = &outcome {
            tracing::error!("{why}");
        }
        // Reported before the store (and with it the response body) is dropped, so the body
        // knows how to end.
        let _ = done_tx.send(outcome);
        drop(store);
        drop(permit);
    };
    tokio::spawn(guest);
    Ok((response_rx, done_rx))
}

/// The failure of a guest, in the words of a command's trap report.
fn describe_failure(
    name: &str,
    error: wasmtime::Error,
    limits: &worldhost_core::Limits,
    store: &Store<ServeHost>,
) -> String {
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => {
            let mut message = trap_message(name, *trap, limits);
            if let (Some(wanted), Some(max)) =
                (store.data().limits.refused(), limits.max_memory_size)
            {
                message.push_str(&format!(
                    " (it asked for {wanted} bytes of memory, past `-W max-memory-size={max}`)"
                ));
            }
            message
        }
        None => format!("`{name}` failed: {:#}", anyhow::Error::from(error)),
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
