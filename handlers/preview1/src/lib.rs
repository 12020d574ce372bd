//! Runs core WebAssembly modules that target WASI preview 1 (`wasi_snapshot_preview1` imports,
//! a `_start` export), as `wasmtime run` does for modules: the same shared settings (args, env,
//! directories, limits) and exit codes as the command handler, with preview 1's own exit code
//! (`proc_exit(n)` is `n`).

mod run;

use std::process::ExitCode;
use worldhost_core::{Asked, Claim, Handler, Registration, RunContext, WasmKind, World, strength};

/// The `preview1` handler.
pub struct Preview1Handler;

inventory::submit! { Registration(&Preview1Handler) }

impl Handler for Preview1Handler {
    fn name(&self) -> &'static str {
        "preview1"
    }

    fn summary(&self) -> &'static str {
        "runs core modules that target WASI preview 1 from their `_start` (like `wasmtime run` on a module)"
    }

    fn looks_for(&self) -> &'static str {
        "a core module exporting `_start`"
    }

    fn claim(&self, world: &World, _asked: &Asked<'_>) -> Claim {
        if world.kind != WasmKind::CoreModule {
            return Claim::No("it is a component, not a core module".into());
        }
        if world.export_named("_start").is_none() {
            return Claim::No(format!(
                "it is a core module without a `_start` export; it exports {}",
                world.export_list()
            ));
        }
        Claim::Yes(strength::WORLD)
    }

    fn run(&self, cx: RunContext<'_>) -> anyhow::Result<ExitCode> {
        run::run(cx)
    }
}
