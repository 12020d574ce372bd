//! Runs core WebAssembly modules that target WASI preview 1 (`wasi_snapshot_preview1` imports,
//! a `_start` export), as `wasmtime run` does for modules: the same shared settings (args, env,
//! directories, limits) and exit codes as the command handler, with preview 1's own exit code
//! (`proc_exit(n)` is `n`).

mod module;
mod run;

use clap::{Args as _, FromArgMatches as _};
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

    fn claim(&self, world: &World, asked: &Asked<'_>) -> Claim {
        if world.kind != WasmKind::CoreModule {
            return Claim::No("it is a component, not a core module".into());
        }
        if let Some(name) = run::invoked(asked.matches) {
            // wasmtime's experimental form: `--invoke NAME` on a core module's export.
            return match world.export_named(&name) {
                Some(_) => Claim::Yes(strength::EXPLICIT),
                None => Claim::No(format!(
                    "`--invoke {name}`: the module exports no `{name}`; it exports {}",
                    world.export_list()
                )),
            };
        }
        if world.export_named("_start").is_none() {
            return Claim::No(format!(
                "it is a core module without a `_start` export; it exports {}",
                world.export_list()
            ));
        }
        Claim::Yes(strength::WORLD)
    }

    fn augment_args(&self, cmd: clap::Command) -> clap::Command {
        run::Preview1Args::augment_args(cmd)
    }

    fn run(&self, cx: RunContext<'_>) -> anyhow::Result<ExitCode> {
        let args = run::Preview1Args::from_arg_matches(cx.matches)?;
        run::run(cx, &args)
    }
}
