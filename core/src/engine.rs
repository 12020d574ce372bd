//! The one engine every handler shares, configured once from the shared settings: compilation
//! cache (on unless `--no-cache`), fuel for `-W fuel`, epoch interruption for `-W timeout`.
//! Codegen options are switched on only when a flag needs them, so that a plain run compiles
//! (and hits the cache) exactly as wasmtime's default does.

use crate::settings::Settings;
use anyhow::{Context as _, Result};
use wasmtime::{Cache, Config, Engine};

/// Builds the engine for these settings.
pub fn build_engine(settings: &Settings) -> Result<Engine> {
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
        let cache = Cache::from_file(None)
            .map_err(anyhow::Error::from)
            .context("cannot set up the compilation cache (`--no-cache` runs without it)")?;
        config.cache(Some(cache));
    }
    Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("cannot create the wasm engine")
}
