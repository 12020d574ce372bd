//! Instantiates the module with wasi_snapshot_preview1 linked and calls `_start`.

use anyhow::Result;
use std::process::ExitCode;
use worldhost_core::{ModuleGuest, RunContext};

pub(crate) fn run(cx: RunContext<'_>) -> Result<ExitCode> {
    let mut guest = ModuleGuest::instantiate(&cx)?;
    let start = guest
        .instance
        .get_typed_func::<(), ()>(&mut guest.store, "_start")
        .map_err(|e| guest.ended(e))?;
    match start.call(&mut guest.store, ()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(guest.ended(e)),
    }
}
