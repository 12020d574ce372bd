//! `worldhost compile`: writes a precompiled artifact (as `wasmtime compile` does) that every
//! handler runs as it runs the component, without compiling; and `worldhost cache`: where the
//! compilation cache lives, what it holds, and clearing it.

use anyhow::{Context as _, Result, bail};
use clap::{ArgMatches, FromArgMatches as _};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use worldhost_core::SharedArgs;
use worldhost_core::cache::{Cache, Usage};
use worldhost_core::engine::cache_for;
use worldhost_core::load::{load_for_run, precompiled_kind};

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
    let settings = SharedArgs::from_arg_matches(matches)?.resolve()?;
    // Compiled for the engine of the handler that will run it, as `run` compiles it.
    let loaded = load_for_run(
        path,
        &settings,
        cache_for(&settings).as_ref(),
        matches,
        None,
        false,
    )?;
    let artifact = loaded.code.serialize()?;
    write_atomically(&out, &artifact)?;
    tracing::info!(artifact = %out.display(), bytes = artifact.len(), "written");
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to `out` through a temporary file beside it, so that a reader (or a run
/// started meanwhile) never sees half an artifact.
fn write_atomically(out: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let cannot = || format!("cannot write `{}`", out.display());
    let mut file = tempfile::Builder::new()
        .prefix(".worldhost-compile-")
        .tempfile_in(dir)
        .with_context(|| {
            format!(
                "{}: is `{}` a directory you can write to?",
                cannot(),
                dir.display()
            )
        })?;
    file.write_all(bytes).with_context(cannot)?;
    file.persist(out)
        .map_err(|e| e.error)
        .with_context(cannot)?;
    Ok(())
}

pub(crate) fn cache(matches: &ArgMatches) -> Result<ExitCode> {
    let cache = Cache::locate()?;
    let dir = cache.dir().display();
    match matches.subcommand() {
        Some(("dir", _)) => crate::print_stdout(&format!("{dir}\n")),
        Some(("clear", _)) => {
            let removed = cache.clear()?;
            crate::print_stdout(&format!("removed {} from {dir}\n", describe(removed)))
        }
        _ => {
            let usage = cache.usage()?;
            crate::print_stdout(&format!(
                "{dir}\n{}, at most {:.1} GiB\n(`worldhost cache clear` empties it; \
                 XDG_CACHE_HOME moves it; WORLDHOST_CACHE_MAX_SIZE bounds it)\n",
                describe(usage),
                cache.max_bytes() as f64 / (1u64 << 30) as f64
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
