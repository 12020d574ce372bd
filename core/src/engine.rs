//! The one engine every handler shares, configured once from the shared settings (fuel for
//! `-W fuel`, epoch interruption for `-W timeout`), and adjusted by the handler that runs the component (a pooling allocator for a
//! server); and the compilation cache that goes with it.

use crate::cache::Cache;
use crate::handler::Handler;
use crate::settings::Settings;
use anyhow::{Context as _, Result};
use wasmtime::{Config, Engine};

/// Builds the engine for these settings, adjusted for `handler` when one is given. An engine the
/// handler's adjustments make impossible (a pooling allocator that cannot reserve its address
/// space under `ulimit -v`) falls back to the plain one, with a warning.
pub fn build_engine(settings: &Settings, handler: Option<&dyn Handler>) -> Result<Engine> {
    if let Some(handler) = handler {
        let mut config = base_config(settings);
        if handler.configure_engine(&mut config, settings) {
            match Engine::new(&config) {
                Ok(engine) => return Ok(engine),
                Err(e) => tracing::warn!(
                    "the {} handler's engine settings failed ({:#}); using the default engine",
                    handler.name(),
                    anyhow::Error::from(e)
                ),
            }
        }
    }
    Engine::new(&base_config(settings))
        .map_err(anyhow::Error::from)
        .context("cannot create the wasm engine")
}

/// Whether `handler` wants an engine of its own (see [`Handler::configure_engine`]).
pub fn wants_own_engine(handler: &dyn Handler, settings: &Settings) -> bool {
    handler.configure_engine(&mut Config::new(), settings)
}

/// The engine settings every handler shares. Code-generation options are switched on only when
/// a flag needs them (fuel for `-W fuel`, epoch interruption for `-W timeout`): each costs
/// compile time and speed (epoch checks make a large component's compilation about 8% slower),
/// and a plain run compiles as `wasmtime run` does.
fn base_config(settings: &Settings) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    if settings.limits.fuel.is_some() {
        config.consume_fuel(true);
    }
    if settings.limits.timeout.is_some() {
        config.epoch_interruption(true);
    }
    config
}

/// The compilation cache, unless `--no-cache`; a cache that cannot be placed (no home
/// directory) is a warning, and the run goes on without it.
pub fn cache_for(settings: &Settings) -> Option<Cache> {
    if !settings.cache {
        return None;
    }
    Cache::locate()
        .inspect_err(|e| {
            tracing::warn!(
                "running without the compilation cache: {e:#} (`--no-cache` silences this)"
            )
        })
        .ok()
}
