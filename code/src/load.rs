//! Loading: a file on disk (component binary or WebAssembly text) into compiled code for an
//! engine, with its world; from the compilation cache when it holds the code, compiled (and
//! cached) otherwise. Which engine is decided by the prepared run (`prepare.rs`).

use crate::cache::Cache;
use crate::kind::{cannot_load_precompiled, file_name, read_wasm};
use crate::world::World;
use crate::{Code, WasmKind, compile, compiles_alike, deserialize_file};
use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Module};

/// A compiled component or core module with its engine and its world.
#[derive(Clone)]
pub struct Loaded {
    /// The path as the user gave it.
    pub path: PathBuf,
    /// The file name without its directories: argv[0] for commands, and the name in messages.
    pub name: String,
    /// The engine it was compiled for.
    pub engine: Engine,
    /// The configuration `engine` was made from.
    config: Config,
    /// The handler whose engine `engine` is, if it is not the shared one.
    pub engine_handler: Option<&'static str>,
    /// For code compiled for a start engine (core's `EnginePlan::Tiered`): what
    /// [`Loaded::completed`] compiles for the full one.
    provisional: Option<Provisional>,
    /// The compiled code.
    pub code: Code,
    /// What it imports and exports.
    pub world: World,
    /// Whether the file was a precompiled artifact, loaded because `--allow-precompiled` was
    /// given; a reload of the same path ([`Loaded::moved`]) is allowed one only then.
    pub precompiled: bool,
}

/// The bytes provisional code was compiled from (the file may change meanwhile), and the full
/// engine's configuration.
#[derive(Clone)]
struct Provisional {
    source: Arc<[u8]>,
    full: Config,
}

/// Told when a compilation begins; what it returns is dropped when the compilation ends. The
/// command line shows a spinner meanwhile.
pub trait Progress: Sync {
    /// A compilation of the file `name` begins.
    fn compiling(&self, _name: &str) -> Option<Box<dyn Send>> {
        None
    }
}

/// Progress nobody is shown.
pub struct Quiet;

impl Progress for Quiet {}

/// The engine code is loaded for: its configuration, the handler it belongs to, and a start
/// engine's configuration when code may be provisional.
#[derive(Clone)]
pub struct Target {
    /// The handler whose engine this is; `None` for the shared one.
    pub handler: Option<&'static str>,
    /// The engine's configuration.
    pub config: Config,
    /// A start engine's, for code compiled for it when the cache lacks the full engine's.
    pub start: Option<Config>,
}

/// How files are loaded: from which cache, whether machine code may be, and who is told of a
/// compilation.
#[derive(Clone, Copy)]
pub struct Loader<'a> {
    /// The compilation cache, if one is used.
    pub cache: Option<&'a Cache>,
    /// A file may be a precompiled artifact (machine code): `--allow-precompiled`.
    pub allow_precompiled: bool,
    /// Told of compilations.
    pub progress: &'a dyn Progress,
}

impl Loaded {
    /// The component, for a handler of components; a core module is an error that says so.
    pub fn component(&self) -> Result<&Component> {
        match &self.code {
            Code::Component(component) => Ok(component),
            Code::Module(_) => bail!(
                "`{}` is a core WebAssembly module, not a component; this handler runs components",
                crate::kind::shown(&self.path)
            ),
        }
    }

    /// The core module, for a handler of modules; a component is an error that says so.
    pub fn module(&self) -> Result<&Module> {
        match &self.code {
            Code::Module(module) => Ok(module),
            Code::Component(_) => bail!(
                "`{}` is a component, not a core module; this handler runs core modules",
                crate::kind::shown(&self.path)
            ),
        }
    }

    /// The same code for another engine (wasmtime ties compiled code to the engine that made
    /// it): copied across when the two compile alike (they differ only in how instances are
    /// allocated, say), otherwise loaded afresh.
    pub fn moved(&self, target: &Target, loader: &Loader<'_>) -> Result<Loaded> {
        let engine = engine(&target.config)?;
        if !compiles_alike(&self.engine, &engine) {
            let target = Target {
                start: None,
                ..target.clone()
            };
            return loader.load(&self.path, &target);
        }
        Ok(Loaded {
            code: self.code.copied_to(&engine)?,
            engine,
            config: target.config.clone(),
            engine_handler: target.handler,
            provisional: None,
            ..self.clone()
        })
    }

    /// The same code in an engine configured as this one was, then by `adjust` (a server
    /// sizes its instance pool to the component, which is known only once it is loaded). The
    /// code is copied across, not compiled again; an `adjust` that would change how code is
    /// compiled is an error.
    pub fn reconfigured(&self, adjust: &dyn Fn(&mut Config)) -> Result<Loaded> {
        let mut config = self.config.clone();
        adjust(&mut config);
        let engine = Engine::new(&config).map_err(anyhow::Error::from)?;
        if !compiles_alike(&self.engine, &engine) {
            bail!("the adjusted engine would compile the code differently");
        }
        Ok(Loaded {
            code: self.code.copied_to(&engine)?,
            engine,
            config,
            ..self.clone()
        })
    }

    /// The same, with the signatures of its world in the component's own WIT names (read
    /// again from its file: decoding costs a validation of the whole component, so only what
    /// shows signatures to a person asks for it). A precompiled artifact keeps no WIT, and a
    /// file that changed meanwhile no longer matches: then the world is left as it is.
    pub fn with_wit_names(&self) -> Loaded {
        let names = (!self.precompiled)
            .then(|| crate::kind::read_component(&self.path).ok())
            .flatten()
            .and_then(|binary| crate::wit::WitNames::decode(&binary));
        match names {
            Some(names) => Loaded {
                world: self.world.named(&names),
                ..self.clone()
            },
            None => self.clone(),
        }
    }

    /// Whether this code was compiled for its handler's start engine, the cache not holding
    /// the code for the full one.
    pub fn is_provisional(&self) -> bool {
        self.provisional.is_some()
    }

    /// For [provisional](Self::is_provisional) code: the code of the same bytes for the full
    /// engine of its handler, from the cache, or compiled and cached. Meant for a thread in the
    /// background while the provisional code runs: it compiles on the calling thread only, so
    /// it takes one core, and tells nobody. Code that is not provisional is returned as is.
    pub fn completed(&self, cache: Option<&Cache>) -> Result<Loaded> {
        let Some(provisional) = &self.provisional else {
            return Ok(self.clone());
        };
        let mut serial = provisional.full.clone();
        serial.parallel_compilation(false);
        let engine = engine(&serial)?;
        let loader = Loader {
            cache,
            allow_precompiled: false,
            progress: &Quiet,
        };
        let kind = self.code.kind();
        let code = loader.compiled(&self.path, &engine, kind, &provisional.source)?;
        Ok(Loaded {
            engine,
            config: provisional.full.clone(),
            provisional: None,
            code,
            ..self.clone()
        })
    }
}

impl Loader<'_> {
    /// Reads, checks and compiles the component or core module at `path` for `target`'s
    /// engine, or takes the compiled code from the cache. A precompiled artifact is loaded as
    /// is when allowed, and refused otherwise. With a start engine in `target`, code the cache
    /// does not hold is compiled for it (provisional code).
    pub fn load(&self, path: &Path, target: &Target) -> Result<Loaded> {
        if let Some(kind) = crate::kind::precompiled_kind(path) {
            return self.load_precompiled(path, kind, std::slice::from_ref(target));
        }
        let (binary, kind) = read_wasm(path)?;
        self.load_binary(path, binary, kind, target)
    }

    /// Loads `binary`, read from `path`, as [`Loader::load`] does.
    pub fn load_binary(
        &self,
        path: &Path,
        binary: Vec<u8>,
        kind: WasmKind,
        target: &Target,
    ) -> Result<Loaded> {
        let started = Instant::now();
        let engine = engine(&target.config)?;
        let cached = self
            .cache
            .and_then(|cache| cache.get(&engine, kind, &binary));
        let start = match (&cached, &target.start) {
            (None, Some(start)) => Engine::new(start)
                .inspect_err(|e| tracing::debug!("no start engine: {e:#}"))
                .ok()
                .map(|engine| (engine, start)),
            _ => None,
        };
        let (engine, config, code, provisional) = match (cached, start) {
            (Some(code), _) => (engine, target.config.clone(), code, None),
            (None, Some((start, config))) => match self.compiled(path, &start, kind, &binary) {
                Ok(code) => {
                    let provisional = Provisional {
                        source: Arc::from(binary),
                        full: target.config.clone(),
                    };
                    (start, config.clone(), code, Some(provisional))
                }
                // A start engine may have a compiler of its own that does not take every
                // component (Winch lacks some proposals); the full engine may.
                Err(e) => {
                    tracing::info!(
                        "cannot compile `{}` for the start engine ({e:#}); compiling it for \
                         the full one",
                        crate::kind::shown(path)
                    );
                    let code = self.compiled_afresh(path, &engine, kind, &binary)?;
                    (engine, target.config.clone(), code, None)
                }
            },
            (None, None) => {
                let code = self.compiled_afresh(path, &engine, kind, &binary)?;
                (engine, target.config.clone(), code, None)
            }
        };
        tracing::debug!(file = %path.display(), elapsed = ?started.elapsed(), "code ready");
        Ok(finish(
            path,
            engine,
            config,
            target.handler,
            code,
            provisional,
            false,
        ))
    }

    /// Loads the precompiled artifact at `path` into the first of `targets` whose engine takes
    /// it, if machine code is allowed; the error says how to compile it again otherwise.
    pub fn load_precompiled(
        &self,
        path: &Path,
        kind: WasmKind,
        targets: &[Target],
    ) -> Result<Loaded> {
        crate::kind::refuse_unless_allowed(path, self.allow_precompiled)?;
        let mut first_error = None;
        for target in targets {
            let engine = engine(&target.config)?;
            match deserialize_file(&engine, kind, path) {
                Ok(code) => {
                    let config = target.config.clone();
                    return Ok(finish(
                        path,
                        engine,
                        config,
                        target.handler,
                        code,
                        None,
                        true,
                    ));
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let e = first_error.unwrap_or_else(|| anyhow::anyhow!("no engine to load it into"));
        Err(cannot_load_precompiled(path, kind, e))
    }

    /// The code for `binary` from the cache, or compiled (and then cached).
    fn compiled(
        &self,
        path: &Path,
        engine: &Engine,
        kind: WasmKind,
        binary: &[u8],
    ) -> Result<Code> {
        if let Some(code) = self.cache.and_then(|cache| cache.get(engine, kind, binary)) {
            return Ok(code);
        }
        self.compiled_afresh(path, engine, kind, binary)
    }

    /// `binary` compiled (and then cached), with [`Progress`] told.
    fn compiled_afresh(
        &self,
        path: &Path,
        engine: &Engine,
        kind: WasmKind,
        binary: &[u8],
    ) -> Result<Code> {
        let shown = self.progress.compiling(&file_name(path));
        let code = compile(path, engine, kind, binary);
        drop(shown);
        let code = code?;
        if let Some(cache) = self.cache {
            cache.put(engine, kind, binary, &code);
        }
        Ok(code)
    }
}

fn finish(
    path: &Path,
    engine: Engine,
    config: Config,
    engine_handler: Option<&'static str>,
    code: Code,
    provisional: Option<Provisional>,
    precompiled: bool,
) -> Loaded {
    let world = match &code {
        Code::Component(component) => World::of(component, &engine),
        Code::Module(module) => World::of_module(module),
    };
    Loaded {
        path: path.to_path_buf(),
        name: file_name(path),
        engine,
        config,
        engine_handler,
        provisional,
        code,
        world,
        precompiled,
    }
}

/// The engine for `config`. An instance allocator that cannot be set up (a pooling allocator
/// that cannot reserve its address space under `ulimit -v`) is replaced by wasmtime's default
/// one, with a warning; every other setting of `config` is kept, epoch interruption included.
pub fn engine(config: &Config) -> Result<Engine> {
    match Engine::new(config) {
        Ok(engine) => Ok(engine),
        Err(e) => {
            let mut on_demand = config.clone();
            on_demand.allocation_strategy(InstanceAllocationStrategy::OnDemand);
            let engine = Engine::new(&on_demand)
                .map_err(|_| anyhow::Error::from(e))
                .context("cannot create the wasm engine")?;
            tracing::warn!(
                "cannot set up the engine's instance allocator; allocating instances one by one \
                 instead (slower)"
            );
            Ok(engine)
        }
    }
}
