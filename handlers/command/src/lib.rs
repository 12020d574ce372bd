//! Runs `wasi:cli/command` components as programs, as `wasmtime run` does: arguments, granted
//! environment and directories, inherited stdio, and the guest's exit status as the process's.

mod run;

use std::process::ExitCode;
use worldhost_core::{Asked, Claim, Handler, Registration, RunContext, World, claim_export};

/// The interface a command exports.
const RUN_INTERFACE: &str = "wasi:cli/run";

/// The `command` handler.
pub struct CommandHandler;

inventory::submit! { Registration(&CommandHandler) }

impl Handler for CommandHandler {
    fn name(&self) -> &'static str {
        "command"
    }

    fn summary(&self) -> &'static str {
        "runs wasi:cli/command components as programs (like `wasmtime run`)"
    }

    fn looks_for(&self) -> &'static str {
        "an export of `wasi:cli/run`"
    }

    fn claim(&self, world: &World, _asked: &Asked<'_>) -> Claim {
        claim_export(world, RUN_INTERFACE, "0.2")
    }

    fn run(&self, cx: RunContext<'_>) -> anyhow::Result<ExitCode> {
        run::run(cx)
    }
}
