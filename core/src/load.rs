//! Loading: a file on disk (component binary or WebAssembly text) into a compiled component and
//! its world, or a one-paragraph error that says what the file is and what to do. Every check
//! that can be made on the bytes is made before compiling.

use crate::cache::{Cache, deserialize, deserialize_file};
use crate::engine::{
    Variant, build, build_engine, build_start_engine, handler_config, wants_own_engine,
};
use crate::handler::{Handler, handler_named, handlers};
use crate::progress::while_compiling;
use crate::select::select;
use crate::settings::Settings;
use crate::world::World;
use anyhow::{Result, bail};
use clap::ArgMatches;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use wasmparser::Parser;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, Module, Precompiled};

/// A compiled component or core module with its engine and its world.
#[derive(Clone)]
pub struct Loaded {
    /// The path as the user gave it.
    pub path: PathBuf,
    /// The file name without its directories: argv[0] for commands, and the name in messages.
    pub name: String,
    /// The engine it was compiled for.
    pub engine: Engine,
    /// The handler whose engine settings `engine` has, if it is not the plain one.
    pub engine_handler: Option<&'static str>,
    /// For code compiled for that handler's start engine ([`Handler::configure_start_engine`]),
    /// since the cache did not hold the code for its full one: the bytes it was compiled from,
    /// kept for [`Loaded::completed`] (the file may change meanwhile).
    source: Option<Arc<[u8]>>,
    /// The compiled code.
    pub code: Code,
    /// What it imports and exports.
    pub world: World,
    /// Whether the file was a precompiled artifact, loaded because `--allow-precompiled` was
    /// given; a reload of the same path ([`Loaded::for_engine`]) is allowed one only then.
    pub precompiled: bool,
}

/// What a file compiles to.
#[derive(Clone)]
pub enum Code {
    /// A component.
    Component(Component),
    /// A core WebAssembly module.
    Module(Module),
}

impl Loaded {
    /// The component, for a handler of components; a core module is an error that says so.
    pub fn component(&self) -> Result<&Component> {
        match &self.code {
            Code::Component(component) => Ok(component),
            Code::Module(_) => bail!(
                "`{}` is a core WebAssembly module, not a component; this handler runs components",
                self.path.display()
            ),
        }
    }

    /// The same code, for another engine: wasmtime ties compiled code to the engine that made
    /// it. When the two engines compile alike (they differ only in how instances are
    /// allocated, say), the code is copied across, not compiled again; otherwise the file is
    /// loaded afresh (from `cache`, if it holds it).
    /// `engine_handler` is the handler whose settings `engine` has.
    pub fn for_engine(
        &self,
        engine: &Engine,
        engine_handler: Option<&'static str>,
        cache: Option<&Cache>,
    ) -> Result<Loaded> {
        if !compiles_alike(&self.engine, engine) {
            let loaded = load_component(&self.path, engine, cache, self.precompiled)?;
            return Ok(Loaded {
                engine_handler,
                source: None,
                ..loaded
            });
        }
        let code = deserialize(engine, self.code.kind(), &self.code.serialize()?)?;
        Ok(Loaded {
            path: self.path.clone(),
            name: self.name.clone(),
            engine: engine.clone(),
            engine_handler,
            source: None,
            code,
            world: self.world.clone(),
            precompiled: self.precompiled,
        })
    }

    /// The same code in an engine configured as this one was, then by `adjust` (a server
    /// sizes its instance pool to the component, which is known only once it is loaded). The
    /// code is copied across, not compiled again; an `adjust` that would change how code is
    /// compiled is an error.
    pub fn reconfigured(
        &self,
        settings: &Settings,
        adjust: &dyn Fn(&mut Config),
    ) -> Result<Loaded> {
        let handler = self.engine_handler.and_then(handler_named);
        let mut config = handler_config(settings, handler, self.is_provisional());
        adjust(&mut config);
        let engine = Engine::new(&config).map_err(anyhow::Error::from)?;
        if !compiles_alike(&self.engine, &engine) {
            bail!("the adjusted engine would compile the code differently");
        }
        let code = deserialize(&engine, self.code.kind(), &self.code.serialize()?)?;
        Ok(Loaded {
            engine,
            code,
            ..self.clone()
        })
    }

    /// Whether this code was compiled for its handler's start engine
    /// ([`Handler::configure_start_engine`]), the cache not holding the code for the full one.
    pub fn is_provisional(&self) -> bool {
        self.source.is_some()
    }

    /// For [provisional](Self::is_provisional) code: the code of the same bytes for the full
    /// engine of its handler, from the cache, or compiled and cached. Meant for a thread in the
    /// background while the provisional code runs: it compiles on the calling thread only, so
    /// it takes one core, and shows no spinner. Code that is not provisional is returned as is.
    pub fn completed(&self, settings: &Settings, cache: Option<&Cache>) -> Result<Loaded> {
        let Some(source) = &self.source else {
            return Ok(self.clone());
        };
        let handler = self.engine_handler.and_then(handler_named);
        let engine = build(settings, handler, Variant::Serial)?;
        let kind = self.code.kind();
        let code = compiled(&self.path, &engine, kind, source, cache, false)?;
        Ok(Loaded {
            path: self.path.clone(),
            name: self.name.clone(),
            engine,
            engine_handler: self.engine_handler,
            source: None,
            code,
            world: self.world.clone(),
            precompiled: self.precompiled,
        })
    }

    /// The core module, for a handler of modules; a component is an error that says so.
    pub fn module(&self) -> Result<&Module> {
        match &self.code {
            Code::Module(module) => Ok(module),
            Code::Component(_) => bail!(
                "`{}` is a component, not a core module; this handler runs core modules",
                self.path.display()
            ),
        }
    }
}

impl Code {
    /// Which kind of code this is.
    pub fn kind(&self) -> WasmKind {
        match self {
            Code::Component(_) => WasmKind::Component,
            Code::Module(_) => WasmKind::CoreModule,
        }
    }

    /// wasmtime's serialized artifact of this code: what `worldhost compile` writes and what
    /// the cache keeps.
    pub fn serialize(&self) -> Result<Vec<u8>> {
        Ok(match self {
            Code::Component(component) => component.serialize()?,
            Code::Module(module) => module.serialize()?,
        })
    }
}

/// Whether code compiled by one engine loads into the other (wasmtime's own test).
fn compiles_alike(a: &Engine, b: &Engine) -> bool {
    use std::hash::{DefaultHasher, Hash as _, Hasher as _};
    let hash = |engine: &Engine| {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        hasher.finish()
    };
    hash(a) == hash(b)
}

/// What a file holds, judged from its bytes before anything is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A component in the binary format.
    Component,
    /// A core WebAssembly module in the binary format.
    CoreModule,
    /// A precompiled artifact (`worldhost compile`, `wasmtime compile`) of a component.
    PrecompiledComponent,
    /// A precompiled artifact of a core module.
    PrecompiledModule,
    /// Starts with the wasm magic, but neither layer is known.
    UnknownWasm,
    /// WebAssembly text.
    Text,
    /// Nothing worldhost can read.
    Other,
    /// No bytes at all.
    Empty,
}

impl FileKind {
    /// Judges a file from its bytes.
    pub fn of(bytes: &[u8]) -> Self {
        if bytes.is_empty() {
            FileKind::Empty
        } else if Parser::is_component(bytes) {
            FileKind::Component
        } else if Parser::is_core_wasm(bytes) {
            FileKind::CoreModule
        } else if bytes.starts_with(b"\0asm") {
            FileKind::UnknownWasm
        } else if let Some(precompiled) = Engine::detect_precompiled(bytes) {
            match precompiled {
                Precompiled::Component => FileKind::PrecompiledComponent,
                Precompiled::Module => FileKind::PrecompiledModule,
            }
        } else if looks_like_wat(bytes) {
            FileKind::Text
        } else {
            FileKind::Other
        }
    }
}

/// WebAssembly text starts, after white space and comments, with `(`.
fn looks_like_wat(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let mut rest = text.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix(";;") {
            rest = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if rest.starts_with("(;") {
            rest = rest.split_once(";)").map_or("", |(_, r)| r).trim_start();
        } else {
            return rest.starts_with('(');
        }
    }
}

/// Reads, checks and compiles the component or core module at `path` for `engine`, or takes
/// the compiled code from `cache` when it holds it; a precompiled artifact is loaded as is if
/// `allow_precompiled`, and refused otherwise.
pub fn load_component(
    path: &Path,
    engine: &Engine,
    cache: Option<&Cache>,
    allow_precompiled: bool,
) -> Result<Loaded> {
    let started = Instant::now();
    let (code, precompiled) = match precompiled_kind(path) {
        Some(kind) => {
            refuse_unless_allowed(path, allow_precompiled)?;
            let code = deserialize_file(engine, kind, path)
                .map_err(|e| cannot_load_precompiled(path, kind, e))?;
            (code, true)
        }
        None => {
            let (binary, kind) = read_wasm(path)?;
            (compiled(path, engine, kind, &binary, cache, true)?, false)
        }
    };
    Ok(finish(
        path,
        engine.clone(),
        code,
        None,
        None,
        precompiled,
        started,
    ))
}

/// A precompiled artifact is machine code: it is loaded only when the user said so, as
/// wasmtime requires `--allow-precompiled` (whatever the file is called, since the kind is
/// judged from the bytes).
fn refuse_unless_allowed(path: &Path, allow_precompiled: bool) -> Result<()> {
    if allow_precompiled {
        return Ok(());
    }
    bail!(
        "`{}` is a precompiled artifact: machine code for this machine (from `worldhost \
         compile` or `wasmtime compile`), which would run unchecked, as a native program does; \
         if you made it or trust it, pass `--allow-precompiled`; otherwise run the .wasm it was \
         compiled from",
        path.display()
    )
}

/// Loads the file at `path` to be run: compiled for the engine of the handler that will run it
/// (`forced`, or the one its world calls for), so that it is compiled once, in the right
/// engine. Before compiling, the world is only sketched from the names the component imports
/// and exports ([`World::sketch`]); the caller selects the handler on the compiled world and
/// moves the code if the guess was wrong ([`Loaded::for_engine`]). A precompiled artifact
/// decides its engine itself: each handler's engine is tried, the base one first.
///
/// With `allow_provisional`, a component whose handler has a start engine, and whose code for
/// the handler's full engine is not in the cache, is compiled for the start engine instead
/// ([`Loaded::is_provisional`]).
pub fn load_for_run(
    path: &Path,
    settings: &Settings,
    cache: Option<&Cache>,
    matches: &ArgMatches,
    forced: Option<&'static dyn Handler>,
    allow_provisional: bool,
) -> Result<Loaded> {
    let started = Instant::now();
    let own_engine = |h: &&'static dyn Handler| wants_own_engine(*h, settings);
    let mut precompiled = false;
    let (engine, handler, code, source) = match precompiled_kind(path) {
        Some(kind) => {
            refuse_unless_allowed(path, settings.allow_precompiled)?;
            precompiled = true;
            let candidates: Vec<Option<&'static dyn Handler>> = match forced {
                Some(handler) => vec![Some(handler).filter(own_engine)],
                None => std::iter::once(None)
                    .chain(handlers().into_iter().filter(own_engine).map(Some))
                    .collect(),
            };
            let mut first_error = None;
            let mut loaded = None;
            for handler in candidates {
                let engine = build_engine(settings, handler)?;
                match deserialize_file(&engine, kind, path) {
                    Ok(code) => {
                        loaded = Some((engine, handler, code));
                        break;
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            match (loaded, first_error) {
                (Some((engine, handler, code)), _) => (engine, handler, code, None),
                (None, Some(e)) => return Err(cannot_load_precompiled(path, kind, e)),
                (None, None) => unreachable!("the base engine is always a candidate"),
            }
        }
        None => {
            let (binary, kind) = read_wasm(path)?;
            let guessed = || {
                let sketch = World::sketch(&binary)?;
                select("", &sketch, matches, None).ok().map(|c| c.handler)
            };
            let handler = forced.or_else(guessed).filter(own_engine);
            let engine = build_engine(settings, handler)?;
            let cached = cache.and_then(|cache| cache.get(&engine, kind, &binary));
            let start = match (&cached, handler) {
                (None, Some(handler)) if allow_provisional => build_start_engine(settings, handler),
                _ => None,
            };
            match (cached, start) {
                (Some(code), _) => (engine, handler, code, None),
                (None, Some(start)) => match compiled(path, &start, kind, &binary, cache, true) {
                    Ok(code) => (start, handler, code, Some(Arc::from(binary))),
                    // A start engine may have a compiler of its own that does not take every
                    // component (Winch lacks some proposals); the full engine may.
                    Err(e) => {
                        tracing::info!(
                            "cannot compile `{}` for the start engine ({e:#}); compiling it for \
                             the full one",
                            path.display()
                        );
                        let code = compiled_afresh(path, &engine, kind, &binary, cache, true)?;
                        (engine, handler, code, None)
                    }
                },
                (None, None) => {
                    let code = compiled_afresh(path, &engine, kind, &binary, cache, true)?;
                    (engine, handler, code, None)
                }
            }
        }
    };
    Ok(finish(
        path,
        engine,
        code,
        handler.map(|h| h.name()),
        source,
        precompiled,
        started,
    ))
}

/// The code for `binary` from `cache`, or compiled (and then cached), with a spinner if
/// `spinner`.
fn compiled(
    path: &Path,
    engine: &Engine,
    kind: WasmKind,
    binary: &[u8],
    cache: Option<&Cache>,
    spinner: bool,
) -> Result<Code> {
    if let Some(code) = cache.and_then(|cache| cache.get(engine, kind, binary)) {
        return Ok(code);
    }
    compiled_afresh(path, engine, kind, binary, cache, spinner)
}

/// `binary` compiled (and then cached), with a spinner if `spinner`.
fn compiled_afresh(
    path: &Path,
    engine: &Engine,
    kind: WasmKind,
    binary: &[u8],
    cache: Option<&Cache>,
    spinner: bool,
) -> Result<Code> {
    let compile = || compile(path, engine, kind, binary);
    let code = if spinner {
        while_compiling(&file_name(path), compile)
    } else {
        compile()
    };
    release_freed_memory();
    let code = code?;
    if let Some(cache) = cache {
        cache.put(engine, kind, binary, &code);
    }
    Ok(code)
}

/// Hands the memory a compilation allocated and freed back to the system; glibc's allocator
/// keeps it otherwise (a server that compiled the 18 MB Python guest at its start kept more
/// than 400 MiB resident, against 114 MiB for one started from the cache).
#[allow(unsafe_code)]
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer: it only returns whole free pages of the allocator's
    // own arenas to the system, and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The file name without its directories: argv[0] for commands, and the name in messages.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn finish(
    path: &Path,
    engine: Engine,
    code: Code,
    engine_handler: Option<&'static str>,
    source: Option<Arc<[u8]>>,
    precompiled: bool,
    started: Instant,
) -> Loaded {
    tracing::debug!(file = %path.display(), elapsed = ?started.elapsed(), "code ready");
    let world = match &code {
        Code::Component(component) => World::of(component, &engine),
        Code::Module(module) => World::of_module(module),
    };
    Loaded {
        path: path.to_path_buf(),
        name: file_name(path),
        engine,
        engine_handler,
        source,
        code,
        world,
        precompiled,
    }
}

/// The kind of precompiled artifact the file at `path` holds, if it holds one: judged from its
/// ELF headers, without reading the whole file (which wasmtime then maps, not reads). A file
/// that cannot be read is `None` here, and [`read_wasm`] says why.
pub fn precompiled_kind(path: &Path) -> Option<WasmKind> {
    match Engine::detect_precompiled_file(path).ok()? {
        Some(Precompiled::Component) => Some(WasmKind::Component),
        Some(Precompiled::Module) => Some(WasmKind::CoreModule),
        None => None,
    }
}

/// Compiles `binary`, a checked component or core module read from `path`.
pub fn compile(path: &Path, engine: &Engine, kind: WasmKind, binary: &[u8]) -> Result<Code> {
    let compiled = match kind {
        WasmKind::Component => Component::new(engine, binary).map(Code::Component),
        WasmKind::CoreModule => Module::new(engine, binary).map(Code::Module),
    };
    compiled.or_else(|e| {
        let cause = format!("{:#}", anyhow::Error::from(e));
        // wasmparser reports a cut-off file as an end of file, or as a section that runs
        // past the end of the data.
        let hint = if cause.contains("unexpected end") || cause.contains("out of bounds") {
            "the file looks truncated; rebuild it or copy it again"
        } else {
            "it may be corrupt, or use a feature worldhost does not enable"
        };
        bail!(
            "`{}` is not a valid {}: {cause}; {hint}",
            path.display(),
            kind.noun()
        )
    })
}

/// The error for a precompiled artifact that does not load: it says to compile it again.
fn cannot_load_precompiled(path: &Path, kind: WasmKind, e: anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "`{}` is a precompiled {} that this worldhost cannot load: {e:#}. It was made by \
         another version of worldhost or wasmtime, for another machine, or with other \
         settings (`-W fuel` and `-W timeout` must be given to both `compile` and `run`, or to \
         neither); compile it again from its .wasm: `worldhost compile app.wasm -o {}`",
        path.display(),
        kind.noun(),
        file_name(path),
    )
}

/// The two kinds of WebAssembly binary worldhost compiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    /// A component.
    Component,
    /// A core module.
    CoreModule,
}

impl WasmKind {
    /// "component" or "core module".
    pub fn noun(self) -> &'static str {
        match self {
            WasmKind::Component => "component",
            WasmKind::CoreModule => "core module",
        }
    }
}

/// Reads the file at `path` and checks that it holds a component, in the binary format or as
/// text; returns the binary. Says what the file is when it is not a component.
pub fn read_component(path: &Path) -> Result<Vec<u8>> {
    match read_wasm(path)? {
        (binary, WasmKind::Component) => Ok(binary),
        (_, WasmKind::CoreModule) => bail!(
            "`{}` is a core WebAssembly module, not a component",
            path.display()
        ),
    }
}

/// Reads the file at `path` and checks that it holds WebAssembly, a component or a core module,
/// in the binary format or as text; returns the binary and its kind. Says what the file is when
/// it is neither.
pub fn read_wasm(path: &Path) -> Result<(Vec<u8>, WasmKind)> {
    let shown = path.display();
    let bytes = read_file(path)?;
    Ok(match FileKind::of(&bytes) {
        FileKind::Component => (bytes, WasmKind::Component),
        FileKind::CoreModule => (bytes, WasmKind::CoreModule),
        FileKind::Text => {
            let binary = match wat::parse_bytes(&bytes) {
                Ok(binary) => binary.into_owned(),
                Err(mut e) => {
                    e.set_path(path);
                    bail!("`{shown}` is not valid WebAssembly text: {e}")
                }
            };
            let kind = match FileKind::of(&binary) {
                FileKind::Component => WasmKind::Component,
                _ => WasmKind::CoreModule,
            };
            (binary, kind)
        }
        FileKind::PrecompiledComponent | FileKind::PrecompiledModule => bail!(
            "`{shown}` is a precompiled artifact (machine code, from `worldhost compile` or \
             `wasmtime compile`), which keeps no WIT; use the .wasm it was compiled from"
        ),
        FileKind::Empty => bail!(
            "`{shown}` is empty (0 bytes), not a WebAssembly component; was its build \
             interrupted? rebuild it"
        ),
        FileKind::UnknownWasm => bail!(
            "`{shown}` starts like WebAssembly but has an unknown version ({}); it may come \
             from a newer toolchain than worldhost supports, or be corrupt",
            hex(&bytes[4..bytes.len().min(8)])
        ),
        FileKind::Other if bytes.starts_with(b"\x7fELF") => bail!(
            "`{shown}` is an ELF file that this worldhost cannot load: a native program or \
             library, or a precompiled artifact that is damaged (truncated?) or was made by \
             another version of worldhost or wasmtime; compile it again from its .wasm: \
             `worldhost compile app.wasm -o {}`",
            file_name(path)
        ),
        FileKind::Other => bail!(
            "`{shown}` is not WebAssembly: it does not start with the `\\0asm` magic bytes \
             (it starts with {}) and is not WebAssembly text; pass a component (`.wasm`), \
             e.g. one built with `cargo build --target wasm32-wasip2`",
            hex(&bytes[..bytes.len().min(4)])
        ),
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    let shown = path.display();
    if path.is_dir() {
        bail!("`{shown}` is a directory; pass the component file inside it");
    }
    std::fs::read(path).or_else(|e| match e.kind() {
        ErrorKind::NotFound => bail!("`{shown}` does not exist; check the path"),
        ErrorKind::PermissionDenied => {
            bail!("cannot read `{shown}`: permission denied; check its permissions")
        }
        _ => bail!("cannot read `{shown}`: {e}"),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_kinds_are_judged_from_bytes() {
        assert_eq!(FileKind::of(b""), FileKind::Empty);
        assert_eq!(FileKind::of(b"\0asm\x01\0\0\0"), FileKind::CoreModule);
        assert_eq!(FileKind::of(b"\0asm\x0d\0\x01\0"), FileKind::Component);
        assert_eq!(FileKind::of(b"\0asm\x07\0\x05\0"), FileKind::UnknownWasm);
        assert_eq!(FileKind::of(b"  ;; comment\n(component)"), FileKind::Text);
        assert_eq!(FileKind::of(b"(; block ;) (module)"), FileKind::Text);
        assert_eq!(FileKind::of(b"\x7fELF\x02\x01"), FileKind::Other);
        assert_eq!(FileKind::of(b"hello"), FileKind::Other);
    }

    #[test]
    fn text_of_a_core_module_loads_as_a_module() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.wat");
        std::fs::write(&path, "(module (func (export \"_start\")))").unwrap();
        let loaded = load_component(&path, &Engine::default(), None, false).unwrap();
        assert!(loaded.module().is_ok());
        let err = loaded.component().err().unwrap().to_string();
        assert!(
            err.contains("is a core WebAssembly module, not a component"),
            "{err}"
        );
        assert_eq!(loaded.world.export_list(), "`_start`");
    }
}
