//! The fresh path: each request gets a store and an instance of its own from the
//! pre-instantiated WASI 0.2 proxy, and the guest's `handle` runs in a task of its own while
//! its response streams to the client. Whatever the guest does, the fault stays in its request.

use crate::answer::Failure;
use crate::body::{Guarded, Outcome, RequestBody};
use crate::output::Instances;
use crate::stop::Stopper;
use http_body_util::BodyExt as _;
use hyper::{Request, Response, StatusCode};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tracing::Instrument as _;
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use worldhost_core::{Cause, GuestPre, Host};

/// A WASI 0.2 proxy served with a fresh instance per request.
pub(crate) struct Fresh {
    guest: Arc<GuestPre>,
    pre: ProxyPre<Host>,
    instances: Arc<Instances>,
    /// Whether requests come over TLS (the guest is told `https`).
    tls: bool,
}

type ResponseReceiver = oneshot::Receiver<Result<Response<HyperOutgoingBody>, ErrorCode>>;

impl Fresh {
    pub(crate) fn new(
        guest: Arc<GuestPre>,
        instances: Arc<Instances>,
        tls: bool,
    ) -> anyhow::Result<Self> {
        let pre = ProxyPre::new(guest.instance_pre().clone())?;
        Ok(Self {
            guest,
            pre,
            instances,
            tls,
        })
    }

    /// Answers `request` from a fresh instance. The permit is held until the guest's handler
    /// has returned (or was stopped by `stopper`), not just until the headers are ready.
    pub(crate) async fn respond(
        &self,
        request: Request<RequestBody>,
        permit: OwnedSemaphorePermit,
        stopper: &Stopper,
    ) -> Result<Response<HyperOutgoingBody>, Failure> {
        let head = request.method() == hyper::Method::HEAD;
        let name = self.guest.name();
        let (response, done) = self.start(request, permit, stopper).map_err(|e| {
            tracing::error!("cannot start `{name}`: {e:#}");
            Failure::Failed
        })?;
        match response.await {
            // The guest answered, but its request was stopped first (its body cut off, say):
            // it answered a request it did not read whole.
            Ok(_) if stopper.stopped().is_some() => {
                Err(Failure::Stopped(stopper.stopped().expect("checked")))
            }
            Ok(Ok(response)) => {
                let due = body_due(head, &response);
                Ok(response
                    .map(|body| Guarded::new(body, done, stopper.clone(), due).boxed_unsync()))
            }
            Ok(Err(code)) => {
                tracing::error!("`{name}` answered with an error: {code:?}");
                Err(Failure::Failed)
            }
            // The guest's handler ended without setting a response: `done` says why (a
            // failure was logged where it happened).
            Err(_) => Err(match done.await {
                Ok(Err(failure)) => failure,
                Ok(Ok(())) => {
                    tracing::error!("`{name}` returned without setting a response");
                    Failure::Failed
                }
                Err(_) => {
                    tracing::error!("the task running `{name}` ended abnormally");
                    Failure::Failed
                }
            }),
        }
    }

    /// Starts the guest on `request`: returns where its response will arrive, and where the
    /// outcome of its handler will.
    fn start(
        &self,
        request: Request<RequestBody>,
        permit: OwnedSemaphorePermit,
        stopper: &Stopper,
    ) -> anyhow::Result<(ResponseReceiver, oneshot::Receiver<Outcome>)> {
        let mut store = self
            .guest
            .store_with((), |wasi| self.instances.wasi(wasi))?;
        let (response_tx, response_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let scheme = if self.tls {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(scheme, request)?;
        let out = store.data_mut().http().new_response_outparam(response_tx)?;
        let guest = self.guest.clone();
        let pre = self.pre.clone();
        let stop = stopper.wait();
        let stopper = stopper.clone();
        let task = async move {
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
            // `-W timeout` interrupts running wasm through the epoch; a guest that waits
            // instead (a sleep, a slow outgoing request) is stopped by core's per-call deadline.
            let run = worldhost_core::within_timeout(guest.settings().limits.timeout, run);
            let ended = tokio::select! {
                result = run => Ok(result),
                why = stop => Err(why),
            };
            // A request stopped from outside counts as stopped, even when its guest ended
            // first (a guest whose client went away mid-response may fail on its next write).
            let outcome = match (ended, stopper.stopped()) {
                (Err(why), _) | (Ok(Err(_)), Some(why)) => {
                    tracing::debug!("`{}` stopped: {why:?}", guest.name());
                    Err(Failure::Stopped(why))
                }
                (Ok(result), _) => result.map_err(|e| classify(&guest, &store, e)),
            };
            // Reported before the store (and with it the response body) is dropped, so the
            // body knows how to end.
            let _ = done_tx.send(outcome);
            if let Some(telemetry) = worldhost_core::telemetry::get() {
                use worldhost_core::store::Limited as _;
                let bytes = store.data_mut().limiter().memory_bytes();
                telemetry.instance_memory(u64::try_from(bytes).unwrap_or(u64::MAX));
            }
            drop(store);
            drop(permit);
        };
        // In the request's span, if one is recorded: its instantiation and outgoing requests
        // are the request's.
        let span = tracing::Span::current();
        match span.is_disabled() {
            true => drop(tokio::spawn(task)),
            false => drop(tokio::spawn(task.instrument(span))),
        }
        Ok((response_rx, done_rx))
    }
}

/// What a guest's error means for its request; the failure is logged here.
fn classify(guest: &GuestPre, store: &wasmtime::Store<Host>, error: wasmtime::Error) -> Failure {
    let name = guest.name();
    if let Some(full) = error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
        tracing::warn!(
            "no room in the instance pool for another `{name}` ({full}); answered 503 (see \
             --max-concurrent-requests)"
        );
        return Failure::PoolFull;
    }
    match guest.classify(store, error) {
        Ok(exit) => {
            tracing::error!("{}", exit.summary());
            match exit.cause {
                Cause::Timeout(_) => Failure::timed_out(),
                _ => Failure::trapped(),
            }
        }
        Err(e) => {
            tracing::error!("`{name}` failed: {:#}", anyhow::Error::from(e));
            Failure::Failed
        }
    }
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
