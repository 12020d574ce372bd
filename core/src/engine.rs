//! The one engine every handler shares, configured once from the shared settings (fuel for
//! `-W fuel`, epoch interruption for `-W timeout`), and adjusted by the handler that runs the component (a pooling allocator for a
//! server); and the compilation cache that goes with it.

use crate::cache::{Cache, Location};
use crate::handler::Handler;
use crate::settings::Settings;
use anyhow::{Context as _, Result};
use wasmtime::{Config, Engine};

/// Builds the engine for these settings, adjusted for `handler` when one is given. An engine the
/// handler's adjustments make impossible (a pooling allocator that cannot reserve its address
/// space under `ulimit -v`) falls back to the plain one, with a warning.
pub fn build_engine(settings: &Settings, handler: Option<&dyn Handler>) -> Result<Engine> {
    build(settings, handler, Variant::Full)
}

/// The handler's start engine ([`Handler::configure_start_engine`]), if it has one for these
/// settings.
pub(crate) fn build_start_engine(settings: &Settings, handler: &dyn Handler) -> Option<Engine> {
    let mut config = base_config(settings);
    handler.configure_engine(&mut config, settings);
    if !handler.configure_start_engine(&mut config, settings) {
        return None;
    }
    Engine::new(&config)
        .inspect_err(|e| tracing::debug!("no start engine for {}: {e:#}", handler.name()))
        .ok()
}

/// Which engine of a handler to build.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    /// The engine the handler runs in.
    Full,
    /// The same, compiling on the calling thread only: for a compilation in the background,
    /// which must leave the other cores to the work already running.
    Serial,
}

pub(crate) fn build(
    settings: &Settings,
    handler: Option<&dyn Handler>,
    variant: Variant,
) -> Result<Engine> {
    let base = || {
        let mut config = base_config(settings);
        if variant == Variant::Serial {
            config.parallel_compilation(false);
        }
        config
    };
    if let Some(handler) = handler {
        let mut config = base();
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
    Engine::new(&base())
        .map_err(anyhow::Error::from)
        .context("cannot create the wasm engine")
}

/// The configuration of `handler`'s engine (its start engine when `start`), without the
/// fallbacks of [`build_engine`]: for an engine made again with one more adjustment
/// ([`crate::Loaded::reconfigured`]).
pub(crate) fn handler_config(
    settings: &Settings,
    handler: Option<&dyn Handler>,
    start: bool,
) -> Config {
    let mut config = base_config(settings);
    if let Some(handler) = handler {
        handler.configure_engine(&mut config, settings);
        if start {
            handler.configure_start_engine(&mut config, settings);
        }
    }
    config
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

/// The compilation cache, unless `--no-cache`: opened (created 0700 if missing). A cache that
/// cannot be placed (no home directory) or is not to be trusted (a link, another user's, or
/// writable by others: see [`crate::private_dir`]) is a warning, once per process, and the run
/// goes on without it.
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
