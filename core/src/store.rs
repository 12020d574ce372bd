//! The store every handler builds its guests in: WASI state granted from the shared settings,
//! and the limits of `-W` (memory, fuel, timeout) applied. Knows no particular world.

use crate::settings::{Limits, Settings};
use anyhow::Result;
use std::sync::mpsc;
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Store data for a guest that sees WASI and nothing else.
pub struct Host {
    /// The WASI context: what the guest was granted.
    pub wasi: WasiCtx,
    /// The guest's resources (files, streams …).
    pub table: ResourceTable,
    /// Memory limits from `-W max-memory-size`.
    pub limits: MemoryLimiter,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl Host {
    /// A store for a guest run with `argv`, granted exactly what `settings` grant, under their
    /// limits.
    pub fn new_store(engine: &Engine, settings: &Settings, argv: &[String]) -> Result<Store<Self>> {
        let host = Host {
            wasi: settings.wasi_builder(argv)?.build(),
            table: ResourceTable::new(),
            limits: MemoryLimiter::new(settings.limits.max_memory_size),
        };
        let mut store = Store::new(engine, host);
        store.limiter(|host| &mut host.limits);
        settings.limits.apply(&mut store)?;
        Ok(store)
    }
}

impl Limits {
    /// Gives a store its fuel and its epoch deadline. The deadline is one tick away: a
    /// [`TimeoutGuard`] ticks the engine's epoch when the timeout expires.
    pub fn apply<T>(&self, store: &mut Store<T>) -> Result<()> {
        if let Some(fuel) = self.fuel {
            store.set_fuel(fuel)?;
        }
        if self.timeout.is_some() {
            store.set_epoch_deadline(1);
        }
        Ok(())
    }

    /// Starts the clock of `-W timeout`, if one was given: when it expires, the engine's epoch
    /// ticks and every store past its deadline traps. Dropping the guard stops the clock.
    pub fn start_timeout(&self, engine: &Engine) -> Option<TimeoutGuard> {
        let timeout = self.timeout?;
        Some(TimeoutGuard::start(engine.clone(), timeout))
    }
}

/// Enforces `-W max-memory-size` and remembers a refusal, so that the trap that usually follows
/// (the guest's allocator gives up) can be explained.
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    max_memory_size: Option<usize>,
    refused: Option<usize>,
}

impl MemoryLimiter {
    /// A limiter allowing linear memories up to `max_memory_size` bytes (no limit: `None`).
    pub fn new(max_memory_size: Option<usize>) -> Self {
        Self {
            max_memory_size,
            refused: None,
        }
    }

    /// The size, in bytes, of the last growth refused, if one was.
    pub fn refused(&self) -> Option<usize> {
        self.refused
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        match self.max_memory_size {
            Some(max) if desired > max => {
                self.refused = Some(desired);
                Ok(false)
            }
            _ => Ok(true),
        }
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// The clock of `-W timeout`; see [`Limits::start_timeout`].
pub struct TimeoutGuard {
    // Dropping the sender wakes the thread, which then ends without ticking.
    _stop: mpsc::Sender<()>,
}

impl TimeoutGuard {
    fn start(engine: Engine, timeout: Duration) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("worldhost-timeout".into())
            .spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(timeout) {
                    engine.increment_epoch();
                }
            })
            .expect("a thread can be spawned for the timeout");
        Self { _stop: stop }
    }
}
