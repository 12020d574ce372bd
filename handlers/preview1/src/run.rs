//! Instantiates the module with wasi_snapshot_preview1 linked (and the `--preload` modules)
//! and calls `_start`. The invoke handler calls another export (`--invoke NAME`) on an
//! instance made here.

use crate::module::ModuleGuest;
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use worldhost_core::RunContext;

/// Flags of the `preview1` handler.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Core module options")]
pub(crate) struct Preview1Args {
    /// Instantiate a core module first, as NAME, for the module's imports from NAME
    /// (`--preload env=lib.wasm`); may be repeated (as in wasmtime)
    #[arg(long = "preload", value_name = "NAME=PATH", value_parser = parse_preload)]
    pub preloads: Vec<(String, PathBuf)>,
}

fn parse_preload(value: &str) -> Result<(String, PathBuf), String> {
    match value.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.into(), path.into()))
        }
        _ => Err(format!(
            "`{value}` is not `NAME=PATH`; write e.g. `--preload env=lib.wasm`"
        )),
    }
}

/// The module of `cx`, instantiated with the shared settings and the `--preload` modules,
/// and initialized if it is a reactor (`_initialize`), as wasmtime does: ready for a call.
pub(crate) fn instantiate(cx: &RunContext<'_>) -> Result<ModuleGuest> {
    let args = cx.flags.of::<Preview1Args>()?;
    let mut guest = ModuleGuest::instantiate(cx, &args.preloads)?;
    if let Some(initialize) = guest.instance.get_func(&mut guest.store, "_initialize") {
        let initialize = initialize
            .typed::<(), ()>(&guest.store)
            .map_err(|e| guest.ended(e))?;
        initialize
            .call(&mut guest.store, ())
            .map_err(|e| guest.ended(e))?;
    }
    Ok(guest)
}

pub(crate) fn run(cx: RunContext<'_>) -> Result<ExitCode> {
    let mut guest = instantiate(&cx)?;
    let start = guest
        .instance
        .get_typed_func::<(), ()>(&mut guest.store, "_start")
        .map_err(|e| guest.ended(e))?;
    match start.call(&mut guest.store, ()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(guest.ended(e)),
    }
}
