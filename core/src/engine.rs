//! The one engine every handler shares, configured once from the shared settings: compilation
//! cache (on unless `--no-cache`), fuel for `-W fuel`, epoch interruption for `-W timeout`.
//! Codegen options are switched on only when a flag needs them, so that a plain run compiles
//! (and hits the cache) exactly as wasmtime's default does.

use crate::handler::Handler;
use crate::settings::Settings;
use anyhow::{Context as _, Result};
use wasmtime::{Cache, Config, Engine};

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

fn base_config(settings: &Settings) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    if settings.limits.fuel.is_some() {
        config.consume_fuel(true);
    }
    if settings.limits.timeout.is_some() {
        config.epoch_interruption(true);
    }
    if settings.cache {
        // wasmtime's own cache, with its default settings file (`~/.config/wasmtime/config.toml`
        // if present): a component compiled once by worldhost or by wasmtime is reused.
        // A cache that cannot be set up (no home directory, a read-only one, a broken settings
        // file) costs speed, not correctness: run without it and say so.
        match Cache::from_file(None) {
            Ok(cache) => {
                config.cache(Some(cache));
            }
            Err(e) => tracing::warn!(
                "running without the compilation cache: {:#} (`--no-cache` silences this)",
                anyhow::Error::from(e)
            ),
        }
    }
    config
}
