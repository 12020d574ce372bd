//! Instantiates a command with WASI linked and calls its `wasi:cli/run`.

use crate::args::CommandArgs;
use anyhow::{Context as _, Result};
use std::process::ExitCode;
use wasmtime_wasi::p2::bindings::sync::Command;
use worldhost_core::link::wasi_linker;
use worldhost_core::outcome::exit_status_of;
use worldhost_core::{Host, RunContext};

pub(crate) fn run(cx: RunContext<'_>, args: &CommandArgs) -> Result<ExitCode> {
    let loaded = cx.component;
    let engine = &loaded.engine;
    // argv[0] is the file name only, as in wasmtime: no host path leaks into the guest.
    let argv0 = args.argv0.clone().unwrap_or_else(|| loaded.name.clone());
    let argv: Vec<String> = std::iter::once(argv0)
        .chain(cx.args.iter().cloned())
        .collect();

    let linker = wasi_linker(loaded, cx.settings)?;
    let mut store = Host::new_store(engine, cx.settings, &argv)?;
    let limits = cx.settings.limits;
    let _timeout = limits.start_timeout(engine);

    let command = match Command::instantiate(&mut store, &loaded.component, &linker) {
        Ok(command) => command,
        // A trap in a start function is still the guest's fault, reported as one.
        Err(e) if e.downcast_ref::<wasmtime::Trap>().is_some() => {
            let refused = store.data().limits.refused();
            return exit_status_of(&loaded.name, e, &limits, refused);
        }
        Err(e) => {
            return Err(anyhow::Error::from(e))
                .with_context(|| format!("cannot instantiate `{}`", loaded.path.display()));
        }
    };
    match command.wasi_cli_run().call_run(&mut store) {
        Ok(Ok(())) => Ok(ExitCode::SUCCESS),
        Ok(Err(())) => Ok(ExitCode::FAILURE),
        Err(e) => {
            let refused = store.data().limits.refused();
            exit_status_of(&loaded.name, e, &limits, refused)
        }
    }
}
