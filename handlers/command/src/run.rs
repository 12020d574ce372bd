//! Instantiates a command with WASI linked and calls its `wasi:cli/run`.

use anyhow::Result;
use std::process::ExitCode;
use wasmtime_wasi::p2::bindings::sync::Command;
use worldhost_core::RunContext;
use worldhost_core::guest::GuestRun;

pub(crate) fn run(cx: RunContext<'_>) -> Result<ExitCode> {
    let loaded = cx.component;
    let mut guest = GuestRun::prepare(&cx)?;
    let command = match Command::instantiate(&mut guest.store, loaded.component()?, &guest.linker) {
        Ok(command) => command,
        Err(e) => return guest.instantiation_failed(e),
    };
    match command.wasi_cli_run().call_run(&mut guest.store) {
        Ok(Ok(())) => Ok(ExitCode::SUCCESS),
        Ok(Err(())) => Ok(ExitCode::FAILURE),
        Err(e) => guest.exit_status(e),
    }
}
