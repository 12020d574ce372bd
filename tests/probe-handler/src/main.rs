//! `worldhost-probe`: worldhost's own `main` plus a handler defined here, outside core and
//! outside the shipped binary. The end-to-end tests run it to prove that a handler is found by
//! linking alone: chosen by its claim, and by `--handler`. Never shipped.

use anyhow::{Context as _, Result};
use clap::Args as _;
use std::process::ExitCode;
use worldhost_core::{
    Asked, Claim, Flags, GuestLinker, Handler, Registration, RunContext, World, flags_of, strength,
};

/// The interface the probe recognises (wit/probe.wit).
const PING: &str = "worldhost:probe/ping";

/// The test-only `probe` handler: claims components that export `worldhost:probe/ping`
/// strongly, and every other component so weakly that any real handler wins.
struct ProbeHandler;

inventory::submit! { Registration(&ProbeHandler) }

/// The probe's own flag, to prove a handler's flags reach `--help` and its run.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Probe options")]
struct ProbeArgs {
    /// Word printed before the guest's answer
    #[arg(long, value_name = "TEXT", default_value = "probe")]
    probe_greeting: String,
}

impl Handler for ProbeHandler {
    fn name(&self) -> &'static str {
        "probe"
    }

    fn summary(&self) -> &'static str {
        "test-only: calls `worldhost:probe/ping` and prints the answer"
    }

    fn looks_for(&self) -> &'static str {
        "an export of `worldhost:probe/ping`"
    }

    fn claim(&self, world: &World, _asked: &Asked<'_>) -> Claim {
        match world.export_of(PING) {
            Some(_) => Claim::Yes(strength::WORLD),
            None => Claim::Yes(1),
        }
    }

    fn augment_args(&self, cmd: clap::Command) -> clap::Command {
        ProbeArgs::augment_args(cmd)
    }

    fn parse_flags(&self, matches: &clap::ArgMatches) -> Result<Option<Flags>> {
        flags_of::<ProbeArgs>(matches)
    }

    fn run(&self, cx: RunContext<'_>) -> Result<ExitCode> {
        let args = cx.flags.of::<ProbeArgs>()?;
        let loaded = cx.component;
        let Some(export) = loaded.world.export_of(PING) else {
            println!(
                "{}: `{}` has no ping; it exports {}",
                args.probe_greeting,
                loaded.name,
                loaded.world.export_list()
            );
            return Ok(ExitCode::SUCCESS);
        };
        let mut guest = GuestLinker::new(&cx)?.instantiate(())?;
        let iface = loaded
            .component()?
            .get_export_index(None, &export.name)
            .context("the ping interface is exported")?;
        let func = loaded
            .component()?
            .get_export_index(Some(&iface), "ping")
            .context("the ping function is exported")?;
        let ping = (guest.instance).get_typed_func::<(), (String,)>(&mut guest.store, func)?;
        let (answer,) = ping
            .call(&mut guest.store, ())
            .map_err(|e| guest.ended(e))?;
        println!("{}: {answer}", args.probe_greeting);
        Ok(ExitCode::SUCCESS)
    }
}

fn main() -> ExitCode {
    worldhost::main()
}
