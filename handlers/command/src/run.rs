//! Instantiates a command with WASI linked and calls its `wasi:cli/run`.

use anyhow::Result;
use std::process::ExitCode;
use wasmtime_wasi::p2::bindings::sync::Command;
use worldhost_core::{GuestLinker, RunContext};

pub(crate) fn run(cx: RunContext<'_>) -> Result<ExitCode> {
    let mut guest = GuestLinker::new(&cx)?.instantiate(())?;
    let command = Command::new(&mut guest.store, &guest.instance)?;
    match command.wasi_cli_run().call_run(&mut guest.store) {
        Ok(Ok(())) => Ok(ExitCode::SUCCESS),
        Ok(Err(())) => Ok(ExitCode::FAILURE),
        Err(e) => Err(guest.ended(e)),
    }
}
