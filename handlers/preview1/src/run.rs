//! Instantiates the module with wasi_snapshot_preview1 linked and calls `_start`.

use crate::PREVIEW1;
use anyhow::{Context as _, Result, bail};
use std::process::ExitCode;
use wasmtime::{Linker, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use worldhost_core::RunContext;
use worldhost_core::outcome::exit_status_of;
use worldhost_core::store::MemoryLimiter;

/// Store data of a preview-1 guest.
struct P1Host {
    wasi: WasiP1Ctx,
    limits: MemoryLimiter,
}

pub(crate) fn run(cx: RunContext<'_>) -> Result<ExitCode> {
    let loaded = cx.component;
    let module = loaded.module()?;
    let settings = cx.settings;
    let engine = &loaded.engine;

    let mut linker: Linker<P1Host> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |host: &mut P1Host| &mut host.wasi)?;
    let prefix = format!("{PREVIEW1}::");
    let others: Vec<String> = loaded
        .world
        .imports
        .iter()
        .filter(|i| !i.name.starts_with(&prefix))
        .map(|i| format!("`{}`", i.name))
        .collect();
    if !others.is_empty() {
        if !settings.unknown_imports_trap {
            bail!(
                "`{}` imports {}, which worldhost does not provide (it provides \
                 `{PREVIEW1}`); `-W unknown-imports-trap=y` links them as functions that trap \
                 when called",
                loaded.path.display(),
                others.join(", ")
            );
        }
        linker.define_unknown_imports_as_traps(module)?;
    }

    let host = P1Host {
        wasi: settings
            .wasi_builder(&settings.argv(&loaded.name, cx.args))?
            .build_p1(),
        limits: MemoryLimiter::new(settings.limits.max_memory_size),
    };
    let mut store = Store::new(engine, host);
    store.limiter(|host| &mut host.limits);
    settings.limits.apply(&mut store)?;
    let limits = settings.limits;
    let _timeout = limits.start_timeout(engine);

    let outcome = linker
        .instantiate(&mut store, module)
        .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
        .and_then(|start| start.call(&mut store, ()));
    match outcome {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e)
            if e.downcast_ref::<wasmtime::Trap>().is_some()
                || e.downcast_ref::<wasmtime_wasi::I32Exit>().is_some() =>
        {
            let refused = store.data().limits.refused();
            exit_status_of(&loaded.name, e, &limits, refused)
        }
        Err(e) => Err(anyhow::Error::from(e))
            .with_context(|| format!("cannot run `{}`", loaded.path.display())),
    }
}
