//! `worldhost run`: check the flags, load the component, let core select the handler, run it.

use anyhow::{Result, anyhow};
use clap::{ArgMatches, FromArgMatches as _};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use worldhost_core::engine::{build_engine, cache_for, wants_own_engine};
use worldhost_core::handler::handler_named;
use worldhost_core::load::load_for_run;
use worldhost_core::select::select;
use worldhost_core::{RunContext, SharedArgs};

pub(crate) fn run(matches: &ArgMatches) -> Result<ExitCode> {
    let mut positional = matches
        .get_many::<OsString>("component")
        .expect("clap requires the component")
        .cloned();
    let path = PathBuf::from(positional.next().expect("clap requires the component"));
    let args = positional
        .map(|arg| {
            arg.into_string().map_err(|arg| {
                anyhow!(
                    "the argument `{}` is not valid UTF-8; WASI passes arguments to the guest as \
                     strings",
                    arg.to_string_lossy()
                )
            })
        })
        .collect::<Result<Vec<String>>>()?;

    // Every flag and the file are checked before anything is compiled.
    let settings = SharedArgs::from_arg_matches(matches)?.resolve()?;
    let forced = matches.get_one::<String>("handler").map(String::as_str);
    let cache = cache_for(&settings);
    let mut loaded = load_for_run(
        &path,
        &settings,
        cache.as_ref(),
        matches,
        forced.and_then(handler_named),
        true,
    )?;
    let choice = select(&path.display().to_string(), &loaded.world, matches, forced)?;
    // Compiled for the handler guessed before compiling; moved if the guess was wrong.
    let wanted = wants_own_engine(choice.handler, &settings).then_some(choice.handler);
    if loaded.engine_handler != wanted.map(|h| h.name()) {
        let engine = build_engine(&settings, wanted)?;
        loaded = loaded.for_engine(&engine, wanted.map(|h| h.name()), cache.as_ref())?;
    }
    tracing::info!(
        handler = choice.handler.name(),
        reason = %choice.reason,
        "handler selected"
    );
    choice.handler.run(RunContext {
        component: &loaded,
        matches,
        settings: &settings,
        args: &args,
    })
}
