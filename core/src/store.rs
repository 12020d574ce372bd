//! The limits of `-W` and `-S` on a guest's store: memory, tables and instances (a
//! [`MemoryLimiter`]), fuel, hostcall fuel, handles, and time (the
//! epoch deadline, checked at the ticks of one [`EpochTicker`] per engine). Knows no world.

use crate::settings::Limits;
use anyhow::Result;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmtime::{Engine, ResourceLimiter, Store, UpdateDeadline};

/// Epoch ticks per second: how often a running guest's deadline is looked at (and a server's
/// guest may yield its thread to other requests).
pub const TICKS_PER_SECOND: u64 = 100;

/// Store data that holds a [`MemoryLimiter`].
pub trait Limited: Send + 'static {
    /// The store's limiter.
    fn limiter(&mut self) -> &mut MemoryLimiter;
}

/// A store for `data` under `limits`: its memory limiter, its fuel, and its deadline of
/// `-W timeout` from now, checked at every epoch tick. With `yield_after` (an async store),
/// a guest that has been running that long yields its thread at each tick, so that a guest
/// that computes for long cannot take a thread from everything else.
pub fn limited_store<D: Limited>(
    engine: &Engine,
    limits: &Limits,
    data: D,
    yield_after: Option<Duration>,
) -> Result<Store<D>> {
    let mut store = Store::new(engine, data);
    store.limiter(|data| data.limiter());
    if let Some(fuel) = limits.fuel {
        store.set_fuel(fuel)?;
    }
    if let Some(fuel) = limits.hostcall_fuel {
        store.set_hostcall_fuel(fuel);
    }
    if let Some(max) = limits.max_component_handles {
        store.set_max_component_handles(max);
    }
    let started = Instant::now();
    let deadline = limits.timeout.map(|t| started + t);
    // Looked at only in an engine with epoch interruption (`-W timeout`, or a server's).
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        let now = Instant::now();
        Ok(match (deadline, yield_after) {
            (Some(deadline), _) if now >= deadline => UpdateDeadline::Interrupt,
            (_, Some(after)) if now - started >= after => UpdateDeadline::Yield(1),
            _ => UpdateDeadline::Continue(1),
        })
    });
    Ok(store)
}

/// Enforces the store limits of `-W` (`max-memory-size`, `max-table-elements`,
/// `max-instances`, `max-tables`, `max-memories`, `trap-on-grow-failure`, as wasmtime's
/// `StoreLimits` does) and remembers a refused memory growth, so that the trap that usually
/// follows (the guest's allocator gives up) can be explained.
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    limits: Limits,
    refused: Option<usize>,
    /// The linear memory the store's instances have been given, in bytes (every memory's
    /// growths from 0, its creation included).
    memory: usize,
}

impl MemoryLimiter {
    /// A limiter for `limits`.
    pub fn new(limits: &Limits) -> Self {
        Self {
            limits: *limits,
            refused: None,
            memory: 0,
        }
    }

    /// The linear memory the store's instances hold, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.memory
    }

    /// The size, in bytes, of the last growth refused, if one was.
    pub fn refused(&self) -> Option<usize> {
        self.refused
    }

    /// A refusal: `Ok(false)` (the instruction returns -1), or a trap with
    /// `-W trap-on-grow-failure`.
    fn refuse(&self, what: &str, desired: usize) -> wasmtime::Result<bool> {
        if self.limits.trap_on_grow_failure {
            wasmtime::bail!("forcing trap when growing {what} to {desired}")
        }
        Ok(false)
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        match self.limits.max_memory_size {
            Some(max) if desired > max => {
                self.refused = Some(desired);
                self.refuse("memory", desired)
            }
            _ => {
                // Counted when allowed: a growth that then fails is rare (the address space
                // ran out), and it is reported as the trap it causes.
                self.memory = self.memory.saturating_add(desired.saturating_sub(current));
                Ok(true)
            }
        }
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        if self.limits.trap_on_grow_failure {
            return Err(error.context("forcing a memory growth failure to be a trap"));
        }
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        match self.limits.max_table_elements {
            Some(max) if desired > max => self.refuse("a table", desired),
            _ => Ok(true),
        }
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        if self.limits.trap_on_grow_failure {
            return Err(error.context("forcing a table growth failure to be a trap"));
        }
        Ok(())
    }

    fn instances(&self) -> usize {
        (self.limits.max_instances).unwrap_or(wasmtime::DEFAULT_INSTANCE_LIMIT)
    }

    fn tables(&self) -> usize {
        (self.limits.max_tables).unwrap_or(wasmtime::DEFAULT_TABLE_LIMIT)
    }

    fn memories(&self) -> usize {
        (self.limits.max_memories).unwrap_or(wasmtime::DEFAULT_MEMORY_LIMIT)
    }
}

/// Advances an engine's epoch [`TICKS_PER_SECOND`] times a second, on a thread of its own,
/// until dropped: the one clock of every deadline and yield.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    /// A ticker for `engine` if `needed` (a deadline or a yield is to be checked), else none.
    pub fn when(needed: bool, engine: &Engine) -> Result<Option<Self>> {
        needed.then(|| Self::start(engine.clone())).transpose()
    }

    /// Starts ticking `engine`'s epoch.
    pub fn start(engine: Engine) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("worldhost-epoch".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1000 / TICKS_PER_SECOND));
                    engine.increment_epoch();
                }
            })?;
        Ok(Self { stop })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
