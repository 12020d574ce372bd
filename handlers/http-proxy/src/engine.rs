//! The engine a server wants: the pooling allocator, so that a fresh instance per request is
//! cheap, epoch checks so that its guests yield, and a start engine. (wasi:http and its
//! outgoing allow-list are core's, as for `-S http`.)

use crate::pool::PoolSize;
use std::time::Duration;
use wasmtime::{Config, Strategy};
use worldhost_core::{EnginePlan, Settings};

/// How long a request's guest has been running (wall clock, since its store was made) before
/// it yields its thread at each epoch tick, so that a guest that computes for long (or
/// forever, without `-W timeout`) cannot take a runtime worker from every other request. A
/// short request never yields, since a yield puts its task behind the others
/// (docs/BENCHMARKS.md, "Settings chosen by measurement").
pub(crate) const YIELD_AFTER: Duration = Duration::from_millis(20);

/// The server's engine: the pooling allocator (sized for the default request bound; see
/// [`crate::pool`]) and epoch checks; and, on x86_64, a start engine with Winch, wasmtime's
/// baseline compiler, instead of Cranelift. Winch compiles a large component in about a third
/// of Cranelift's time and its code is slower (`scripts/bench-start`); a server starts from it
/// while Cranelift's code compiles in the background (`tiered::complete_in_background`). Its
/// code has the same epoch checks, so its guests yield and meet `-W timeout` alike. Only on
/// x86_64: wasmtime's support tiers list Winch there; its aarch64 backend is in development.
pub(crate) fn engine(base: &Config, settings: &Settings) -> EnginePlan {
    let mut full = base.clone();
    // `-O pooling-allocator=n` keeps wasmtime's on-demand allocator.
    if settings.optimize.pooling_allocator != Some(false) {
        full.allocation_strategy(PoolSize::DEFAULT.strategy(settings));
    }
    full.epoch_interruption(true);
    if !cfg!(target_arch = "x86_64") {
        return EnginePlan::Own(Box::new(full));
    }
    let mut start = full.clone();
    start.strategy(Strategy::Winch);
    EnginePlan::Tiered {
        full: Box::new(full),
        start: Box::new(start),
    }
}
