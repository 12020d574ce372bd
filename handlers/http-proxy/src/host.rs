//! The store of one request: WASI granted from the shared settings (stdout and stderr
//! inherited, no stdin), wasi:http with the outgoing allow-list, and the limits of `-W`. And
//! the engine a server wants: the pooling allocator, so that a fresh instance per request is
//! cheap.

use crate::outgoing::OutgoingPolicy;
use crate::pool::PoolSize;
use anyhow::Result;
use std::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime::{Config, Engine, Store, Strategy, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};
use worldhost_core::Settings;
use worldhost_core::store::MemoryLimiter;

/// Epoch ticks per second: how often a running guest yields its thread to other requests, and
/// the resolution of the `-W timeout` deadline.
pub(crate) const TICKS_PER_SECOND: u64 = 100;

/// How long a request's guest has been running (wall clock, since its store was made) before
/// it yields at each tick.
const YIELD_AFTER: std::time::Duration = std::time::Duration::from_millis(20);

/// Store data of one request.
pub(crate) struct ServeHost {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub limits: MemoryLimiter,
    outgoing: OutgoingPolicy,
}

impl WasiView for ServeHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for ServeHost {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outgoing,
        }
    }
}

/// A fresh store for one request, granted what the settings grant. (In an engine without epoch
/// checks, the deadline set here is never looked at.)
pub(crate) fn new_store(
    engine: &Engine,
    settings: &Settings,
    name: &str,
    outgoing: &OutgoingPolicy,
) -> Result<Store<ServeHost>> {
    let mut wasi = settings.wasi_builder(&settings.argv(name, &[]))?;
    // A server's guest reads its request, never the terminal.
    wasi.stdin(wasmtime_wasi::p2::pipe::ClosedInputStream);
    let host = ServeHost {
        wasi: wasi.build(),
        http: WasiHttpCtx::new(),
        table: ResourceTable::new(),
        limits: MemoryLimiter::new(settings.limits.max_memory_size),
        outgoing: outgoing.clone(),
    };
    let mut store = Store::new(engine, host);
    store.limiter(|host| &mut host.limits);
    if let Some(fuel) = settings.limits.fuel {
        store.set_fuel(fuel)?;
    }
    // At the ticks of the server's epoch ticker, a guest whose request has been running for
    // longer than YIELD_AFTER yields its thread, so that a guest that computes for long (or forever,
    // without `-W timeout`) cannot take a runtime worker from every other request; past
    // `-W timeout` it is interrupted instead. A short request never yields: yielding puts its
    // task behind the others, and when every tick made the request it landed on yield, p99
    // latency on the hello guest went from 3.4 ms to 15 ms (wrk, 32 connections).
    let started = Instant::now();
    let deadline = settings.limits.timeout.map(|t| started + t);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        let now = Instant::now();
        Ok(match deadline {
            Some(deadline) if now >= deadline => UpdateDeadline::Interrupt,
            _ if now - started >= YIELD_AFTER => UpdateDeadline::Yield(1),
            _ => UpdateDeadline::Continue(1),
        })
    });
    Ok(store)
}

/// The server's engine: the pooling allocator (sized for the default request bound; see
/// [`crate::pool`]), and epoch checks.
pub(crate) fn configure_engine(config: &mut Config, settings: &Settings) {
    config.allocation_strategy(PoolSize::DEFAULT.strategy(settings));
    // Every request's guest yields at each epoch tick (see `new_store`).
    config.epoch_interruption(true);
}

/// The engine to start in when the code for the full one is not cached: the same, with Winch,
/// wasmtime's baseline compiler, instead of Cranelift. Winch compiles the 18 MB Python proxy
/// guest in about a third of Cranelift's time, and its code is slower (`scripts/bench-start`:
/// a cold server's first answer, and its requests/s from Winch's code and, warm, from
/// Cranelift's). Its code has the same epoch checks, so its guests yield and meet
/// `-W timeout` as the full code's do. A server starts from it,
/// and Cranelift's code, compiled in the background, takes over (`server::serve`). Where Winch
/// cannot compile a component, core compiles it for the full engine instead. Only on x86_64:
/// wasmtime's support tiers list Winch there; its aarch64 backend is still in development.
pub(crate) fn configure_start_engine(config: &mut Config, _settings: &Settings) -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    config.strategy(Strategy::Winch);
    true
}
