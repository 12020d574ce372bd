//! The reuse path: serving with instances reused across requests, as wasmtime serve serves a WASI 0.3 `wasi:http/service`: an
//! instance takes up to `--max-instance-reuse-count` requests, `--max-instance-concurrent-reuse-count`
//! at once, and is dropped after `--idle-instance-timeout` without one. The dispatch is
//! wasmtime-wasi-http's own (`handler::ProxyHandler`); this file says how an instance is made
//! (the same store as any of the server's guests, granted what the settings grant), when it
//! takes a request, and when it expires. A 0.2 proxy is served this way too when
//! `--max-instance-reuse-count` is above 1.
//!
//! `-W fuel` bounds each request too: an instance then serves one at a time, its fuel refilled
//! for each. The other limits (`-W max-memory-size` and the rest) are the instance's: its
//! memory and tables live on from request to request, and so does everything the guest keeps
//! in them (`--max-instance-reuse-count 1` gives each request an instance of its own).
//!
//! `-W timeout` bounds each request, not the instance: a request past it is answered 504, and
//! its instance, which may still be computing for it, is dropped (a 0.3 task cannot be
//! cancelled alone, wasmtime#11833). A trap drops the instance; the requests on it that had no
//! response yet are answered 500 (wasmtime cannot tie a trap under reuse to one request).

use crate::answer::Failure;
use crate::args::Reuse;
use crate::body::{Held, RequestBody};
use crate::output::Instances;
use crate::stop::Stopper;
use http_body_util::BodyExt;
use hyper::{Request, Response};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::Store;
use wasmtime::component::GuestTaskId;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::handler::{
    ExpirationError, HandlerState, Instance, InstantiationError, ProxyHandler, ProxyPre,
    ShouldAccept, TrapOrPanicError, WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode;
use worldhost_core::{GuestPre, Host};

/// What a worker needs to make its instance.
pub(crate) struct Service {
    guest: Arc<GuestPre>,
    pre: ProxyPre<Host>,
    instances: Arc<Instances>,
    reuse: Reuse,
}

/// The dispatcher of one runner's requests to its instances.
pub(crate) type Dispatch = ProxyHandler<Service>;

impl Service {
    /// The dispatcher for `pre`'s component, whose stores `guest` makes.
    pub(crate) fn dispatch(
        guest: Arc<GuestPre>,
        pre: ProxyPre<Host>,
        instances: Arc<Instances>,
        reuse: Reuse,
    ) -> Dispatch {
        ProxyHandler::new(Service {
            guest,
            pre,
            instances,
            reuse,
        })
    }
}

impl HandlerState for Service {
    type StoreData = Host;
    type WorkerExpiration = Expiry;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<Host, Expiry, Worker>> {
        // The store lives for many requests: `-W timeout` is applied to each of them (by
        // `Worker::on_request_start` and `Expiry`), not counted from the store's making.
        let mut store = self
            .guest
            .reusable_store_with((), |wasi| self.instances.wasi(wasi))
            .map_err(wasmtime::Error::from_anyhow)?;
        let proxy = self.pre.instantiate_async(&mut store).await?;
        Ok(Instance {
            store,
            proxy,
            view: WasiHttpView::http,
            expiration: Expiry {
                idle: self.reuse.idle,
                timeout: self.guest.settings().limits.timeout,
                sleep: None,
            },
            state: Worker {
                guest: self.guest.clone(),
                reuse: self.reuse,
            },
        })
    }
}

/// One instance's worker: when it takes another request, and what its end is logged as.
pub(crate) struct Worker {
    guest: Arc<GuestPre>,
    reuse: Reuse,
}

impl WorkerState for Worker {
    type StoreData = Host;
    type RequestData = ();

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.reuse.total {
            ShouldAccept::Never
        } else if concurrent >= self.reuse.concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        mut store: wasmtime::StoreContextMut<'_, Host>,
        _data: (),
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        // `-W fuel` is each request's: the instance serves one at a time then
        // (`HttpProxyArgs::reuse`), and its tank is filled again for the next.
        if let Some(fuel) = self.guest.settings().limits.fuel
            && self.reuse.concurrent == 1
            && let Err(e) = store.set_fuel(fuel)
        {
            tracing::warn!("cannot refill the instance's fuel: {e}");
        }
        match self.guest.settings().limits.timeout {
            Some(timeout) => Box::pin(tokio::time::sleep(timeout)),
            None => Box::pin(std::future::pending()),
        }
    }

    fn drop(&self, store: Store<Host>, result: wasmtime::Result<()>) {
        let Err(error) = result else {
            return;
        };
        // Past `-W timeout`: its request's answer (504) was logged.
        if error.is::<ExpirationError>() {
            tracing::debug!(
                "an instance of `{}` is dropped past its time",
                self.guest.name()
            );
            return;
        }
        match self.guest.classify(&store, error) {
            Ok(exit) => tracing::error!("{}; its instance is dropped", exit.summary()),
            // wasmtime's dispatcher says "worker panicked" for a worker dropped from outside
            // too: the server's runtime, stopping, drops its tasks. A panic unwinds.
            Err(e) if !std::thread::panicking() => tracing::debug!(
                "an instance of `{}` is dropped: {:#}",
                self.guest.name(),
                anyhow::Error::from(e)
            ),
            Err(e) => tracing::error!(
                "`{}` failed: {:#}; its instance is dropped",
                self.guest.name(),
                anyhow::Error::from(e)
            ),
        }
    }
}

/// How long after its newest request's `-W timeout` a busy instance is dropped.
const EXPIRY_GRACE: Duration = Duration::from_millis(50);

/// When an instance is dropped: idle past `--idle-instance-timeout`, or busy past `-W timeout`
/// since its newest request began (then every request on it has expired, and whatever it
/// still computes is for nobody). Looked at outside the instance's event loop, so a guest
/// that computes for ever is dropped too.
pub(crate) struct Expiry {
    idle: Duration,
    timeout: Option<Duration>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl WorkerExpiration for Expiry {
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let this = self.get_mut();
        // Past `-W timeout`, each request's own expiry answers it first (504); the instance
        // goes a moment later.
        let after = match status {
            WorkerStatus::Idle => Some(this.idle),
            WorkerStatus::Requests | WorkerStatus::PostReturn => {
                this.timeout.map(|t| t + EXPIRY_GRACE)
            }
        };
        let Some(after) = after else {
            this.sleep = None;
            return Poll::Pending;
        };
        let deadline = tokio::time::Instant::from_std(start + after);
        match &mut this.sleep {
            Some(sleep) if sleep.deadline() == deadline => {}
            _ => this.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
        let sleep = this.sleep.as_mut().expect("set above");
        sleep.as_mut().poll(cx)
    }
}

/// The proxy's typed exports for reuse, whichever version it is.
pub(crate) fn proxy_pre(guest: &GuestPre, p3: bool) -> anyhow::Result<ProxyPre<Host>> {
    let pre = guest.instance_pre().clone();
    Ok(if p3 {
        ProxyPre::P3(wasmtime_wasi_http::p3::bindings::ServicePre::new(pre)?)
    } else {
        ProxyPre::P2(wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre)?)
    })
}

/// Answers one request through `dispatch`: its instance is found or made there, and the
/// response streams from it while the request's place under `--max-concurrent-requests` is
/// held (until its body has gone out, or was dropped).
pub(crate) async fn respond(
    dispatch: &Dispatch,
    request: Request<RequestBody>,
    permit: OwnedSemaphorePermit,
    stopper: &Stopper,
) -> Result<Response<HyperOutgoingBody>, Failure> {
    let started = Instant::now();
    let answered = dispatch
        .handle((), request.map(BodyExt::boxed_unsync))
        .await;
    // Its body was cut off (too large, or too slow): the guest answered what it could not
    // read whole.
    if let Some(why) = stopper.stopped() {
        return Err(Failure::Stopped(why));
    }
    match answered {
        Ok(response) => {
            let (head, body) = response.into_parts();
            let body = Held::gather(body, permit).await;
            Ok(Response::from_parts(head, body.boxed_unsync()))
        }
        Err(error) => Err(classify(&dispatch.state().guest, &error, started.elapsed())),
    }
}

/// What the failure of a request that got no response from its guest means; logged here,
/// unless the instance's end was (a trap is logged once, when its instance is dropped).
fn classify(guest: &GuestPre, error: &wasmtime::Error, elapsed: Duration) -> Failure {
    let name = guest.name();
    let timed_out = || {
        tracing::error!("`{name}` ran past `-W timeout` on a request; answered 504");
        Failure::timed_out()
    };
    if error.is::<ExpirationError>() {
        return timed_out();
    }
    if error.is::<TrapOrPanicError>() {
        // Its instance was dropped: past the request's time, that is the timeout's doing.
        return match guest.settings().limits.timeout {
            Some(timeout) if elapsed >= timeout => timed_out(),
            _ => Failure::trapped(),
        };
    }
    if let Some(failed) = error.downcast_ref::<InstantiationError<()>>() {
        if failed.error.is::<wasmtime::PoolConcurrencyLimitError>() {
            tracing::warn!(
                "no room in the instance pool for another `{name}`; answered 503 (see \
                 --max-concurrent-requests)"
            );
            return Failure::PoolFull;
        }
        tracing::error!("cannot instantiate `{name}`: {:#}", failed.error);
        return Failure::Failed;
    }
    if let Some(code) = error.downcast_ref::<ErrorCode>() {
        tracing::error!("`{name}` answered with an error: {code:?}");
        return Failure::Failed;
    }
    tracing::error!("`{name}` failed: {error:#}");
    Failure::Failed
}
