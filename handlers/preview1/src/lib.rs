//! Runs core WebAssembly modules that target WASI preview 1 (`wasi_snapshot_preview1` imports,
//! a `_start` export), as `wasmtime run` does for modules: the same shared settings (args, env,
//! directories, limits) and exit codes as the command handler, with preview 1's own exit code
//! (`proc_exit(n)` is `n`); or calls another export, as wasmtime's `--invoke NAME` (the
//! invoke handler's flag, read as core's [`Calls`]).

mod call;
mod module;
mod run;

use clap::Args as _;
use std::process::ExitCode;
use worldhost_core::{
    Asked, Calls, Claim, Flags, Handler, Registration, RunContext, WasmKind, World, flags_of,
    strength,
};

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
        if let Some(name) = invoked(asked.flags.get::<Calls>()) {
            // wasmtime's experimental form: `--invoke NAME` on a core module's export.
            return match world.export_named(name) {
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

    fn parse_flags(&self, matches: &clap::ArgMatches) -> anyhow::Result<Option<Flags>> {
        flags_of::<run::Preview1Args>(matches)
    }

    fn run(&self, cx: RunContext<'_>) -> anyhow::Result<ExitCode> {
        match cx.flags.get::<Calls>().filter(|c| !c.calls.is_empty()) {
            Some(calls) => call::run(cx, calls),
            None => run::run(cx),
        }
    }
}

/// The export `--invoke` names, if it names one.
fn invoked(calls: Option<&Calls>) -> Option<&str> {
    calls?.calls.first().map(String::as_str)
}
