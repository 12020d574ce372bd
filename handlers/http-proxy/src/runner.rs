//! The runner: a component linked with WASI and wasi:http, pre-instantiated once in an engine
//! whose instance pool holds the requests it may serve at once, and the path its requests take
//! (a fresh instance each, or reused instances), behind one seam: [`Runner::respond`].

use crate::answer::Failure;
use crate::args::HttpProxyArgs;
use crate::body::RequestBody;
use crate::concurrent::{self, Dispatch, Service};
use crate::engine::YIELD_AFTER;
use crate::output::Instances;
use crate::pool;
use crate::sequential::Fresh;
use crate::stop::Stopper;
use anyhow::{Context as _, Result};
use hyper::{Request, Response};
use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use tokio::sync::OwnedSemaphorePermit;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use worldhost_core::engine::cache_for;
use worldhost_core::{GuestLinker, Loaded, Settings, with_concurrency};

/// The pre-instantiated component requests are served from.
pub(crate) struct Runner {
    /// How requests reach it.
    serving: Serving,
    /// Which version of the file it was loaded from: the start of its BLAKE3 hash, set once
    /// known (the first is hashed in the background, off the start's path).
    pub version: Arc<OnceLock<String>>,
}

/// How requests reach the component.
enum Serving {
    /// A fresh instance per request, from the proxy world's typed exports (a WASI 0.2 proxy).
    Fresh(Fresh),
    /// Instances reused across requests (a WASI 0.3 service, or a 0.2 proxy with
    /// `--max-instance-reuse-count` above 1).
    Reused(Dispatch),
}

/// Whether `component` must be loaded again with wasmtime's concurrency support before it is
/// served: its instances are reused (a 0.2 proxy's are then called in the store's event loop)
/// and its code was compiled without it.
pub(crate) fn needs_concurrency(
    component: &Loaded,
    args: &HttpProxyArgs,
    settings: &Settings,
) -> bool {
    let p3 = crate::serves_p3(&component.world, settings);
    let reused = args.reuse(p3, settings.limits.fuel.is_some()).total > 1 || p3;
    reused && !component.engine.get_concurrency_support()
}

/// `component`'s code with concurrency support (see [`needs_concurrency`]).
pub(crate) fn concurrent_code(component: &Loaded, settings: &Settings) -> Result<Loaded> {
    let cache = cache_for(settings);
    with_concurrency(
        component,
        &crate::HttpProxyHandler,
        settings,
        cache.as_ref(),
    )
}

/// What a runner is made of, besides the component: the flags, the settings and the words
/// after the component, as the server was started with them.
pub(crate) struct Recipe<'a> {
    pub args: &'a HttpProxyArgs,
    pub settings: &'a Settings,
    pub guest_args: &'a [String],
    pub instances: &'a Arc<Instances>,
}

impl Runner {
    /// Links `component` and pre-instantiates it, in an engine whose instance pool holds
    /// `--max-concurrent-requests` of it at once where it can; returns how many it holds.
    pub(crate) fn new(
        component: &Loaded,
        recipe: &Recipe<'_>,
        version: Arc<OnceLock<String>>,
    ) -> Result<(Self, usize)> {
        let (args, settings) = (recipe.args, recipe.settings);
        let p3 = crate::serves_p3(&component.world, settings);
        let reuse = args.reuse(p3, settings.limits.fuel.is_some());
        let reused = reuse.total > 1 || p3;
        let component = match needs_concurrency(component, args, settings) {
            true => Cow::Owned(concurrent_code(component, settings)?),
            false => Cow::Borrowed(component),
        };
        let (loaded, holds) = pool::sized(&component, settings, args.max_concurrent_requests)?;
        let guest = GuestLinker::new_async_for(&loaded, settings, recipe.guest_args)?
            .http()?
            .yield_after(YIELD_AFTER)
            .prepare()?;
        let guest = Arc::new(guest);
        let cannot = || format!("cannot prepare `{}` for serving", loaded.path.display());
        let tls = args.tls_cert.is_some();
        let serving = if reused {
            let pre = concurrent::proxy_pre(&guest, p3).with_context(cannot)?;
            Serving::Reused(Service::dispatch(
                guest,
                pre,
                recipe.instances.clone(),
                reuse,
            ))
        } else {
            let fresh = Fresh::new(guest, recipe.instances.clone(), tls).with_context(cannot)?;
            Serving::Fresh(fresh)
        };
        Ok((Self { serving, version }, holds))
    }

    /// Answers `request`, holding `permit` (its place under `--max-concurrent-requests`) while
    /// its guest works for it; `stopper` stops it from outside.
    pub(crate) async fn respond(
        &self,
        request: Request<RequestBody>,
        permit: OwnedSemaphorePermit,
        stopper: &Stopper,
    ) -> Result<Response<HyperOutgoingBody>, Failure> {
        match &self.serving {
            Serving::Fresh(fresh) => fresh.respond(request, permit, stopper).await,
            Serving::Reused(dispatch) => {
                concurrent::respond(dispatch, request, permit, stopper).await
            }
        }
    }
}
