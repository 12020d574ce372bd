//! `worldhost compile`: writes a precompiled artifact (as `wasmtime compile` does) that every
//! handler runs as it runs the component, without compiling; and `worldhost cache`: where the
//! compilation cache lives, what it holds, and clearing it.

use crate::args::{ComposeArgs, SharedArgs};
use anyhow::{Context as _, Result, bail};
use clap::{ArgMatches, FromArgMatches as _};
use std::path::PathBuf;
use std::process::ExitCode;
use worldhost_core::code::cache::{Location, Usage};
use worldhost_core::code::kind::{precompiled_kind, read_wasm};
use worldhost_core::code::private_dir::{check_replaceable, write_file_atomically};
use worldhost_core::engine::cache_for;
use worldhost_core::{Asked, HandlerFlags, RunRequest, UsageError, prepare, with_concurrency};

/// What is written, and the flag its path was given with, for the errors.
const OUTPUT: (&str, &str) = ("the artifact", "`-o`");

pub(crate) fn compile(matches: &ArgMatches) -> Result<ExitCode> {
    let path = matches
        .get_one::<PathBuf>("component")
        .expect("clap requires the component");
    let out = match matches.get_one::<PathBuf>("output") {
        Some(out) => out.clone(),
        None => path.with_extension("cwasm"),
    };
    if precompiled_kind(path).is_some() {
        bail!(
            "`{}` is already a precompiled artifact; compile the .wasm it was made from",
            path.display()
        );
    }
    crate::app::refuse_run_only_flags(matches, "compile")?;
    check_replaceable(&out, OUTPUT.0, OUTPUT.1)?;
    let settings = SharedArgs::from_arg_matches(matches)?.resolve()?;
    // Compiled for the engine of the handler that will run it, as `run` compiles it.
    let cache = cache_for(&settings);
    let prepared = prepare(&RunRequest {
        path,
        settings: &settings,
        asked: Asked {
            handler: None,
            guest_args: false,
            flags: &HandlerFlags::default(),
        },
        cache: cache.as_ref(),
        progress: &crate::progress::Spinner,
        provisional: false,
    })?;
    // Code for a handler that may call it in the store's event loop though the component uses
    // no concurrency (a server reusing instances) gets the support: an artifact cannot be
    // compiled again when it is served.
    let loaded = match &prepared.choice {
        Ok(choice) if choice.handler.compiles_concurrent(&prepared.loaded.world) => {
            with_concurrency(&prepared.loaded, choice.handler, &settings, cache.as_ref())?
        }
        _ => prepared.loaded,
    };
    let artifact = loaded.code.serialize()?;
    // Checked again as it is written: compiling took a while.
    write_file_atomically(&out, &artifact, OUTPUT.0, OUTPUT.1).with_context(|| {
        format!(
            "cannot write `{}` (give `-o` a path in a directory you can write to)",
            out.display()
        )
    })?;
    tracing::info!(artifact = %out.display(), bytes = artifact.len(), "written");
    Ok(ExitCode::SUCCESS)
}

/// `worldhost compose`: the composition `--middleware` and `--plug` make at load time, written
/// as a component (checked as `compile -o` checks its output).
pub(crate) fn compose(matches: &ArgMatches) -> Result<ExitCode> {
    let path = matches
        .get_one::<PathBuf>("component")
        .expect("clap requires the component");
    let out = matches
        .get_one::<PathBuf>("output")
        .expect("clap requires the output");
    let pieces = ComposeArgs::from_arg_matches(matches)?.pieces();
    if pieces.is_empty() {
        return Err(UsageError(
            "nothing to compose: give `--middleware PATH` or `--plug PATH`".into(),
        )
        .into());
    }
    const COMPOSED: (&str, &str) = ("the composed component", "`-o`");
    check_replaceable(out, COMPOSED.0, COMPOSED.1)?;
    let (binary, kind) = read_wasm(path)?;
    let composed = worldhost_core::code::compose::compose(path, kind, binary, &pieces, None)?;
    write_file_atomically(out, &composed, COMPOSED.0, COMPOSED.1)
        .with_context(|| format!("cannot write `{}`", out.display()))?;
    tracing::info!(component = %out.display(), bytes = composed.len(), "written");
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn cache(matches: &ArgMatches) -> Result<ExitCode> {
    let location = Location::from_env()?;
    let dir = location.dir.display();
    // Opened only if it is there, and refused (not listed, not cleared) if it is not the
    // user's own: `clear` through a linked directory would delete the link's target's files.
    let opened = || {
        location.open(false).map_err(|e| {
            e.context("the compilation cache is not used; nothing was listed or removed")
        })
    };
    match matches.subcommand() {
        Some(("dir", _)) => crate::print_stdout(&format!("{dir}\n")),
        Some(("clear", _)) => {
            let removed = match opened()? {
                Some(cache) => cache.clear()?,
                None => Usage::default(),
            };
            crate::print_stdout(&format!("removed {} from {dir}\n", describe(removed)))
        }
        _ => {
            let usage = match opened()? {
                Some(cache) => cache.usage()?,
                None => Usage::default(),
            };
            crate::print_stdout(&format!(
                "{dir}\n{}, at most {:.1} GiB\n(`worldhost cache clear` empties it; \
                 XDG_CACHE_HOME moves it; WORLDHOST_CACHE_MAX_SIZE bounds it)\n",
                describe(usage),
                location.max_bytes as f64 / (1u64 << 30) as f64
            ))
        }
    }
}

fn describe(usage: Usage) -> String {
    let plural = if usage.entries == 1 {
        "entry"
    } else {
        "entries"
    };
    format!(
        "{} {plural}, {:.1} MiB",
        usage.entries,
        usage.bytes as f64 / (1 << 20) as f64
    )
}
