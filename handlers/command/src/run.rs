//! Instantiates a command with WASI linked and calls its `wasi:cli/run`, on a tokio runtime of
//! one thread: a WASI 0.2 command through WASI's async bindings, a 0.3 one (an `async func
//! run`) in the store's event loop, as `wasmtime run` runs it. `-W timeout` stops either,
//! whether it computes or waits.
//!
//! Not the synchronous bindings for 0.2: at a guest's first blocking call (a hello command's
//! first print) they start wasmtime-wasi's own runtime, of a thread per core, which made a
//! warm start about 0.3 ms slower (`scripts/bench-run`).

use anyhow::Result;
use std::process::ExitCode;
use worldhost_core::{GuestLinker, RunContext, block_on};

/// How `run` ended: `Ok(())` or `Err(())`, as wasi:cli/run returns it.
fn status(ran: Result<(), ()>) -> ExitCode {
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(()) => ExitCode::FAILURE,
    }
}

/// A WASI 0.2 command.
pub(crate) fn run(cx: RunContext<'_>) -> Result<ExitCode> {
    use wasmtime_wasi::p2::bindings::Command;
    block_on(async {
        let mut guest = GuestLinker::new_async(&cx)?.instantiate_async(()).await?;
        let command = Command::new(&mut guest.store, &guest.instance)?;
        let ran = guest
            .call(async |store| command.wasi_cli_run().call_run(store).await)
            .await?;
        Ok(status(ran))
    })
}

/// A WASI 0.3 command.
pub(crate) fn run_p3(cx: RunContext<'_>) -> Result<ExitCode> {
    use wasmtime_wasi::p3::bindings::Command;
    block_on(async {
        let mut guest = GuestLinker::new_async(&cx)?.instantiate_async(()).await?;
        let command = Command::new(&mut guest.store, &guest.instance)?;
        let ran = guest
            .run_concurrent(async |store| command.wasi_cli_run().call_run(store).await)
            .await?;
        Ok(status(ran))
    })
}
