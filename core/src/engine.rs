//! The one engine every handler shares, configured once from the shared settings (fuel for
//! `-W fuel`), and adjusted by the handler that runs the component (a pooling allocator for a
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

/// The engine settings every handler shares. They are chosen so that code compiled once serves
/// every handler and every run: epoch interruption is always on (running guests can be
/// interrupted, by `-W timeout` or a server's scheduling), so a timeout does not change the
/// code, and the cache entry or `worldhost compile` artifact of a component is the same for
/// `run` and `serve`. Only `-W fuel` changes the code (fuel metering costs too much to be on for
/// everyone).
fn base_config(settings: &Settings) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    if settings.limits.fuel.is_some() {
        config.consume_fuel(true);
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
