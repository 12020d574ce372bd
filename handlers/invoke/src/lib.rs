//! Calls a component's exported functions from the command line, as `wasmtime run --invoke`
//! does: each `--invoke 'CALL'` is a WAVE function call, typed against the function's
//! parameters; results are printed in WAVE. Several calls run in order on one instance. Its
//! flags are filed as core's [`Calls`], which the preview1 handler reads for a core module's
//! `--invoke NAME`.

mod args;
mod call;
mod cli;
mod example;
mod json;
mod lookup;
mod repl;

use args::InvokeArgs;
use clap::{Args as _, FromArgMatches as _};
use std::process::ExitCode;
use worldhost_core::{
    Asked, Calls, Claim, Flags, Handler, Registration, RunContext, WasmKind, World, strength,
};

/// Why neither the invoke nor the repl handler takes a core module, or a component without a
/// function to call.
const CORE_MODULE: &str = "it is a core module, not a component";
const NO_FUNCTION: &str = "it exports no function";

/// The `invoke` handler.
pub struct InvokeHandler;

inventory::submit! { Registration(&InvokeHandler) }

impl Handler for InvokeHandler {
    fn name(&self) -> &'static str {
        "invoke"
    }

    fn summary(&self) -> &'static str {
        "calls exported functions with WAVE arguments and prints the results (like `wasmtime run --invoke`)"
    }

    fn looks_for(&self) -> &'static str {
        "`--invoke 'CALL'` naming an exported function"
    }

    fn claim(&self, world: &World, asked: &Asked<'_>) -> Claim {
        if world.kind == WasmKind::CoreModule {
            return Claim::No(CORE_MODULE.into());
        }
        if args::calls_given(asked) {
            // The user asked for a call: whatever else the component exports.
            return Claim::Yes(strength::EXPLICIT);
        }
        match example::suggestion(world) {
            // `worldhost run calc.wasm add 1 2`: a call spelled as a command line, unless a
            // handler of the component's world (a command) claims the arguments.
            Some(_) if asked.guest_args => Claim::Yes(strength::FALLBACK),
            Some(suggestion) => Claim::No(format!("no `--invoke` was given; {suggestion}")),
            None => Claim::No(NO_FUNCTION.into()),
        }
    }

    fn augment_args(&self, cmd: clap::Command) -> clap::Command {
        InvokeArgs::augment_args(cmd)
    }

    fn parse_flags(&self, matches: &clap::ArgMatches) -> anyhow::Result<Option<Flags>> {
        let args = InvokeArgs::from_arg_matches(matches)?;
        let (calls, json, fail_on_err) = (args.calls, args.json, args.fail_on_err);
        Ok(Some(Box::new(Calls {
            calls,
            json,
            fail_on_err,
        })))
    }

    fn run(&self, cx: RunContext<'_>) -> anyhow::Result<ExitCode> {
        let args = cx.flags.of::<Calls>()?;
        call::run(cx, args)
    }
}

/// The `repl` handler: `worldhost repl app.wasm`, a session of calls on one instance.
pub struct ReplHandler;

inventory::submit! { Registration(&ReplHandler) }

impl Handler for ReplHandler {
    fn name(&self) -> &'static str {
        "repl"
    }

    fn summary(&self) -> &'static str {
        "a session of calls on one instance, with names for results and resource handles (`worldhost repl`)"
    }

    fn looks_for(&self) -> &'static str {
        "`worldhost repl`, on a component that exports functions"
    }

    fn subcommand(&self) -> Option<(&'static str, &'static str)> {
        Some((
            "repl",
            "Call a component's exports interactively, on one instance; keeps results and resources",
        ))
    }

    fn claim(&self, world: &World, asked: &Asked<'_>) -> Claim {
        if !asked.named(self.name()) {
            return Claim::No("it runs only when asked for, with `worldhost repl`".into());
        }
        if world.kind == WasmKind::CoreModule {
            Claim::No(CORE_MODULE.into())
        } else if example::suggestion(world).is_none() {
            Claim::No(NO_FUNCTION.into())
        } else {
            Claim::Yes(strength::EXPLICIT)
        }
    }

    fn takes_guest_args(&self) -> bool {
        false
    }

    fn run(&self, cx: RunContext<'_>) -> anyhow::Result<ExitCode> {
        let args = cx.flags.of::<Calls>()?;
        repl::run(cx, args.json, args.fail_on_err)
    }
}

/// Not part of worldhost's interface: what `fuzz/`'s wave target drives.
#[doc(hidden)]
pub mod fuzzing {
    /// Parses `call` and types it against the functions `loaded` exports, as `--invoke` does
    /// before it runs anything; returns the error `--invoke` would print, if any.
    pub fn type_call(loaded: &worldhost_core::Loaded, call: &str) -> anyhow::Result<()> {
        crate::call::prepare(loaded, call).map(|_| ())
    }
}
