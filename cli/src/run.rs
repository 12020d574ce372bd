//! `worldhost run`: check the flags, load the component, let core select the handler, run it.

use crate::args::SharedArgs;
use anyhow::{Context as _, Result, anyhow};
use clap::{ArgMatches, FromArgMatches as _};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use worldhost_core::code::kind::{InMemory, read_bounded};
use worldhost_core::engine::cache_for;
use worldhost_core::handler::handler_named;
use worldhost_core::{Asked, Handler, HandlerFlags, RunContext, RunRequest, UsageError, prepare};

/// `worldhost SUBCOMMAND …` where SUBCOMMAND is `run` or a handler's own (`serve`).
pub(crate) fn run(subcommand: &str, matches: &ArgMatches) -> Result<ExitCode> {
    let mut positional = matches
        .get_many::<OsString>("component")
        .expect("clap requires the component")
        .cloned();
    let path = PathBuf::from(positional.next().expect("clap requires the component"));
    // `-`: the component is read from stdin, as `wasmtime run -` reads it.
    let stdin = (path.as_os_str() == "-").then(stdin_file).transpose()?;
    let path = stdin
        .as_ref()
        .map_or(path, |copy| copy.path().to_path_buf());
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
    let mut settings = SharedArgs::from_arg_matches(matches)?.resolve()?;
    if stdin.is_some() {
        settings.argv0.get_or_insert_with(|| "-".into());
    }
    let flags = HandlerFlags::parse(matches)?;
    let forced = matches.get_one::<String>("handler").map(String::as_str);
    // A handler named on the command line refuses misplaced words before anything compiles.
    if let Some(handler) = forced.and_then(handler_named) {
        check_guest_args(subcommand, &path, &args, handler)?;
    }
    let cache = cache_for(&settings);
    let prepared = prepare(&RunRequest {
        path: &path,
        settings: &settings,
        asked: asked(matches, &flags),
        cache: cache.as_ref(),
        progress: &crate::progress::Spinner,
        provisional: true,
    })?;
    let (loaded, choice) = prepared.runnable(&settings)?;
    tracing::info!(
        handler = choice.handler.name(),
        reason = %choice.reason,
        "handler selected"
    );
    let span = tracing::Span::current();
    span.record("worldhost.component", loaded.name.as_str());
    span.record("worldhost.handler", choice.handler.name());
    if forced.is_none() {
        check_guest_args(subcommand, &path, &args, choice.handler)?;
    }
    choice.handler.run(RunContext {
        component: &loaded,
        flags: &flags,
        settings: &settings,
        args: &args,
    })
}

/// `-` as the component: stdin, read whole (up to the size any file may have) into an
/// anonymous file in memory, kept open for the run ([`worldhost_core::code::kind::in_memory`]).
fn stdin_file() -> Result<InMemory> {
    let bytes = read_bounded(std::io::stdin().lock(), "-")
        .context("cannot read the component from stdin (`-`)")?;
    worldhost_core::code::kind::in_memory("-", &bytes)
        .context("cannot hold the component read from stdin (`-`)")
}

/// What the command line asks of the handlers: the one it names (`--handler`, or the
/// subcommand's), whether words follow the component, and the handlers' flags.
pub(crate) fn asked<'a>(matches: &'a ArgMatches, flags: &'a HandlerFlags) -> Asked<'a> {
    Asked {
        handler: matches.get_one::<String>("handler").map(String::as_str),
        guest_args: matches
            .try_get_raw("component")
            .ok()
            .flatten()
            .is_some_and(|words| words.len() > 1),
        flags,
    }
}

/// The words after the component are the guest's. A handler that takes none refuses them (a
/// usage error that shows where options go: a server must not listen on the default address
/// because `--addr` came last and was dropped); for one that takes them, a word spelled like
/// one of worldhost's own options is passed on, with a warning that says so.
fn check_guest_args(
    subcommand: &str,
    path: &Path,
    args: &[String],
    handler: &dyn Handler,
) -> Result<()> {
    if args.is_empty() {
        return Ok(());
    }
    let reordered = format!(
        "worldhost {subcommand} {} {}",
        args.join(" "),
        path.display()
    );
    if !handler.takes_guest_args() {
        return Err(UsageError(format!(
            "the {} handler passes no arguments to the guest, and `{}` came after the \
             component; worldhost's options go before the component: `{reordered}`",
            handler.name(),
            args.join(" "),
        ))
        .into());
    }
    let command = crate::app::command_for(Some(subcommand));
    let own = command.find_subcommand(subcommand);
    if let Some(option) = args
        .iter()
        .find(|word| own.is_some_and(|cmd| is_own_option(cmd, word)))
    {
        tracing::warn!(
            "`{option}` after `{}` goes to the guest as its argument, not to worldhost; \
             worldhost's options go before the component",
            path.display()
        );
    }
    Ok(())
}

/// Whether `word` is spelled like one of the options of `cmd` (`--addr`, `--dir=x`, `-W`),
/// leaving out those a program commonly takes too (`-v`, `--help`).
fn is_own_option(cmd: &clap::Command, word: &str) -> bool {
    const COMMON: &[&str] = &["verbose", "help", "version", "json"];
    if !word.starts_with('-') {
        return false;
    }
    cmd.get_arguments()
        .any(|arg| match word.strip_prefix("--") {
            Some(long) => {
                let long = long.split_once('=').map_or(long, |(name, _)| name);
                arg.get_long()
                    .is_some_and(|name| name == long && !COMMON.contains(&name))
            }
            None => arg.get_short().is_some_and(|short| {
                arg.get_long().is_none_or(|name| !COMMON.contains(&name))
                    && word.len() == 2
                    && word.ends_with(short)
            }),
        })
}
