//! Engines: the one every handler shares, configured from the shared settings (fuel for
//! `-W fuel`, epoch interruption for `-W timeout`), and the plan a handler may have for one of
//! its own ([`EnginePlan`]); and the compilation cache that goes with them.

use crate::settings::Settings;

use wasmtime::Config;
use worldhost_code::cache::{Cache, Location};

/// The engine a handler's components run in: what [`crate::Handler::engine`] returns.
#[derive(Clone)]
pub enum EnginePlan {
    /// The engine every handler shares ([`base_config`]).
    Shared,
    /// An engine of its own (a server's pooling allocator), configured from the base one.
    Own(Box<Config>),
    /// An engine of its own, and a start engine whose code compiles faster (wasmtime's
    /// baseline compiler): when the cache does not hold the code for `full`, the component is
    /// compiled for `start`, marked [provisional](crate::Loaded::is_provisional), and the
    /// handler replaces it with [`crate::Loaded::completed`] when that is ready. Should `start`
    /// fail to compile the component, it is compiled for `full` instead.
    Tiered {
        /// The engine the handler runs in once the code is compiled for it.
        full: Box<Config>,
        /// The engine to start in.
        start: Box<Config>,
    },
}

impl EnginePlan {
    /// The configuration of the engine the handler runs in, if it is not the shared one.
    pub fn full(&self) -> Option<&Config> {
        match self {
            EnginePlan::Shared => None,
            EnginePlan::Own(full) | EnginePlan::Tiered { full, .. } => Some(full),
        }
    }

    /// The configuration of its start engine, if it has one.
    pub fn start(&self) -> Option<&Config> {
        match self {
            EnginePlan::Tiered { start, .. } => Some(start),
            _ => None,
        }
    }
}

/// The engine settings every handler shares: those of wasmtime's option groups
/// ([`Settings::engine`]), with the component model on. Code-generation options are switched
/// on only when a flag needs them (fuel for `-W fuel`, epoch interruption for `-W timeout`):
/// each costs compile time and speed, and a plain run compiles as `wasmtime run` does.
pub fn base_config(settings: &Settings) -> Config {
    let mut config = settings.engine.clone();
    config.wasm_component_model(true);
    if settings.limits.fuel.is_some() {
        config.consume_fuel(true);
    }
    if settings.limits.timeout.is_some() {
        config.epoch_interruption(true);
    }
    config
}

/// The compilation cache, unless `--no-cache`: opened (created 0700 if missing). A cache that
/// cannot be placed (no home directory) or is not to be trusted (a link, another user's, or
/// writable by others: see [`worldhost_code::private_dir`]) is a warning, once per process,
/// and the run goes on without it.
pub fn cache_for(settings: &Settings) -> Option<Cache> {
    if !settings.cache {
        return None;
    }
    let opened = Location::from_env().and_then(|location| location.open(true));
    match opened {
        Ok(cache) => cache,
        Err(e) => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    "running without the compilation cache: {e:#} (`--no-cache` silences this)"
                )
            });
            None
        }
    }
}
