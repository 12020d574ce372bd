//! A core module that targets WASI preview 1, instantiated with the shared settings: the same
//! grants and limits as a component's guest, through core's store and limits.

use anyhow::{Result, bail};
use std::path::PathBuf;
use wasmtime::Store;
use wasmtime_wasi::p1::WasiP1Ctx;
use worldhost_core::guest::write_coredump;
use worldhost_core::linker::unprovided;
use worldhost_core::store::{EpochTicker, Limited, MemoryLimiter, limited_store};
use worldhost_core::{GuestExit, Item, RunContext, Settings, WasmKind};

/// The module every WASI preview 1 import comes from.
pub const PREVIEW1: &str = "wasi_snapshot_preview1";
/// The module of WASI's preview 0, which wasmtime still links for old modules.
pub const PREVIEW0: &str = "wasi_unstable";

/// A core module that targets WASI preview 1, instantiated with the shared settings: the
/// same grants and limits as a component's guest.
pub struct ModuleGuest {
    /// The store.
    pub store: Store<ModuleHost>,
    /// The instance.
    pub instance: wasmtime::Instance,
    name: String,
    settings: Settings,
    _ticker: Option<EpochTicker>,
}

/// A preview-1 guest's store data.
pub struct ModuleHost {
    wasi: WasiP1Ctx,
    limits: MemoryLimiter,
}

impl Limited for ModuleHost {
    fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limits
    }
}

impl ModuleGuest {
    /// Links `wasi_snapshot_preview1` (and `wasi_unstable`, unless `-S preview0=n`, as
    /// wasmtime does), then the `preloads` (`--preload NAME=PATH`: core modules whose exports
    /// the module imports from NAME), judges the module's other imports as a component's are
    /// judged (or, with `-W unknown-imports-default`, gives them functions that return
    /// zeros), and instantiates the module.
    pub fn instantiate(cx: &RunContext<'_>, preloads: &[(String, PathBuf)]) -> Result<Self> {
        let loaded = cx.component;
        let module = loaded.module()?;
        let settings = cx.settings;
        let mut linker = wasmtime::Linker::new(&loaded.engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |host: &mut ModuleHost| &mut host.wasi)?;
        let mut provided = vec![PREVIEW1.to_string()];
        if settings.preview0 {
            wasmtime_wasi::p0::add_to_linker_sync(&mut linker, |host: &mut ModuleHost| {
                &mut host.wasi
            })?;
            provided.push(PREVIEW0.to_string());
        }
        // `-W unknown-exports-allow` is for `Linker::module`, which the preloads go through.
        if let Some(allow) = settings.unknown_exports_allow {
            linker.allow_unknown_exports(allow);
        }
        // Compiled before the store's clock starts: `-W timeout` is the guest's time.
        let preloaded = (preloads.iter())
            .map(|(name, path)| {
                let (binary, kind) = worldhost_core::code::kind::read_wasm(path)?;
                if kind != WasmKind::CoreModule {
                    bail!(
                        "`--preload {name}={}` is a component; `--preload` takes core modules",
                        path.display()
                    );
                }
                let code = worldhost_core::code::compile(path, &loaded.engine, kind, &binary)?;
                let worldhost_core::code::Code::Module(module) = code else {
                    bail!("`--preload {name}` did not compile to a core module");
                };
                Ok((name, path, module))
            })
            .collect::<Result<Vec<_>>>()?;
        let host = ModuleHost {
            wasi: settings
                .wasi_builder(&settings.argv(&loaded.name, cx.args))?
                .build_p1(),
            limits: MemoryLimiter::new(&settings.limits),
        };
        let mut store = limited_store(&loaded.engine, &settings.limits, host, None)?;
        let ticker = EpochTicker::when(settings.limits.timeout.is_some(), &loaded.engine)?;
        let failed = |store: &Store<ModuleHost>, e: wasmtime::Error, doing: String| {
            let refused = store.data().limits.refused();
            GuestExit::error(&loaded.name, e, &settings.limits, refused, || doing)
        };
        for (name, path, preload) in &preloaded {
            if let Err(e) = linker.module(&mut store, name, preload) {
                let doing = format!("cannot instantiate `--preload {name}={}`", path.display());
                return Err(failed(&store, e, doing));
            }
            provided.push(name.to_string());
        }
        let missing: Vec<&Item> = (loaded.world.imports.iter())
            .filter(|i| {
                !provided
                    .iter()
                    .any(|p| i.name.starts_with(&format!("{p}::")))
            })
            .collect();
        if !missing.is_empty() {
            if settings.unknown_imports_trap {
                linker.define_unknown_imports_as_traps(module)?;
            } else if settings.unknown_imports_default {
                linker.define_unknown_imports_as_default_values(&mut store, module)?;
            } else {
                let provided: Vec<String> = provided.iter().map(|p| format!("`{p}`")).collect();
                bail!(unprovided(loaded, &missing, &provided.join(", ")));
            }
        }
        match linker.instantiate(&mut store, module) {
            Ok(instance) => Ok(ModuleGuest {
                store,
                instance,
                name: loaded.name.clone(),
                settings: settings.clone(),
                _ticker: ticker,
            }),
            Err(e) => {
                let doing = format!(
                    "cannot instantiate `{}`",
                    worldhost_core::code::kind::shown(&loaded.path)
                );
                Err(failed(&store, e, doing))
            }
        }
    }

    /// The error to return for a call into this module that failed; with
    /// `-D coredump=PATH`, a trap's core dump is written there first.
    pub fn ended(&mut self, error: wasmtime::Error) -> anyhow::Error {
        write_coredump(&self.settings, &mut self.store, &self.name, &error);
        let refused = self.store.data().limits.refused();
        GuestExit::error(&self.name, error, &self.settings.limits, refused, || {
            format!("cannot run `{}`", self.name)
        })
    }
}
