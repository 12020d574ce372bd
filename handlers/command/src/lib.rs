//! Runs `wasi:cli/command` components as programs, as `wasmtime run` does: arguments, granted
//! environment and directories, inherited stdio, and the guest's exit status as the process's.
//! Both versions of the world: WASI 0.2 and 0.3 (an async `run`); a component that exports
//! both runs as 0.3, as wasmtime 48 runs it.

mod run;

use std::process::ExitCode;
use worldhost_core::{
    Asked, Claim, Handler, Registration, RunContext, World, claim_export, export_version,
};

/// The interface a command exports.
const RUN_INTERFACE: &str = "wasi:cli/run";
/// The versions of it this handler runs, the one it prefers first.
const VERSIONS: &[&str] = &["0.3", "0.2"];

/// The `command` handler.
pub struct CommandHandler;

inventory::submit! { Registration(&CommandHandler) }

impl Handler for CommandHandler {
    fn name(&self) -> &'static str {
        "command"
    }

    fn summary(&self) -> &'static str {
        "runs wasi:cli/command components (WASI 0.2 and 0.3) as programs (like `wasmtime run`)"
    }

    fn looks_for(&self) -> &'static str {
        "an export of `wasi:cli/run`"
    }

    fn claim(&self, world: &World, _asked: &Asked<'_>) -> Claim {
        claim_export(world, RUN_INTERFACE, VERSIONS)
    }

    fn found(&self, world: &World) -> Option<String> {
        let version = export_version(world, RUN_INTERFACE, VERSIONS)?;
        let found = format!(
            "it exports `{RUN_INTERFACE}@{version}` (WASI 0.{})",
            version.minor
        );
        Some(match export_version(world, RUN_INTERFACE, &["0.2"]) {
            Some(other) if other != version => {
                format!("{found}, and `@{other}` too: it runs as WASI 0.3, as wasmtime 48 runs it")
            }
            _ => found,
        })
    }

    fn run(&self, cx: RunContext<'_>) -> anyhow::Result<ExitCode> {
        // `-S p3=n` turns WASI 0.3 off: a component that exports both runs as 0.2.
        let versions: &[&str] = if cx.settings.p3 {
            VERSIONS
        } else {
            &["0.2", "0.3"]
        };
        match export_version(&cx.component.world, RUN_INTERFACE, versions) {
            Some(v) if v.minor == 3 => run::run_p3(cx),
            _ => run::run(cx),
        }
    }
}
