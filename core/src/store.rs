//! The limits of `-W` on a guest's store: memory (a [`MemoryLimiter`]), fuel, and time (the
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
