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
    Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("cannot create the wasm engine")
}
