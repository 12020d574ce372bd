//! worldhost-code: what a file holds (judged from its bytes, with the errors that say so), the
//! code it compiles to, and the compilation cache of that code. Knows nothing of worlds,
//! handlers or WASI: core builds on it, and so can anything that only compiles (a containerd
//! shim precompiling layers).

pub mod cache;
pub mod compose;
pub mod kind;
pub mod load;
pub mod private_dir;
pub mod wit;
pub mod world;

pub use kind::{FileKind, WasmKind};

use anyhow::{Result, bail};
use std::path::Path;
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

/// What a file compiles to.
#[derive(Clone)]
pub enum Code {
    /// A component.
    Component(Component),
    /// A core WebAssembly module.
    Module(Module),
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

    /// The same code for `engine`, which must compile as the code's own engine does (see
    /// [`compiles_alike`]): copied across, not compiled again.
    pub fn copied_to(&self, engine: &Engine) -> Result<Code> {
        deserialize(engine, self.kind(), &self.serialize()?)
    }
}

/// Whether code compiled by one engine loads into the other (wasmtime's own test).
pub fn compiles_alike(a: &Engine, b: &Engine) -> bool {
    use std::hash::{DefaultHasher, Hash as _, Hasher as _};
    let hash = |engine: &Engine| {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        hasher.finish()
    };
    hash(a) == hash(b)
}

/// Whether an error that loading code gave (`cause`, with its chain) is the instance pool's
/// refusal of a component that needs more than its `-O pooling-*` limits allow, not a fault of
/// the code: wasmtime says so only in its message.
pub fn refused_by_pool(cause: &str) -> bool {
    cause.contains("in the pooling allocator")
}

/// Compiles `binary`, a checked component or core module read from `path`; the error says
/// whether the file looks cut short.
pub fn compile(path: &Path, engine: &Engine, kind: WasmKind, binary: &[u8]) -> Result<Code> {
    let compiled = compiler_panic::caught(|| match kind {
        WasmKind::Component => Component::new(engine, binary).map(Code::Component),
        WasmKind::CoreModule => Module::new(engine, binary).map(Code::Module),
    });
    release_freed_memory();
    let compiled = compiled.map_err(|panic| {
        anyhow::anyhow!(
            "wasmtime failed while compiling `{}`: {panic}; this is a bug in wasmtime, not in \
             the file: compiling without the `-O`, `-C`, `-D` or `-W` keys given may avoid it",
            kind::shown(path)
        )
    })?;
    compiled.or_else(|e| {
        let cause = format!("{:#}", anyhow::Error::from(e));
        if refused_by_pool(&cause) {
            bail!(
                "`{}` does not fit the instance pool: {cause}; raise the `-O pooling-*` limit \
                 this names, or allocate instances on demand with `-O pooling-allocator=n`",
                kind::shown(path)
            );
        }
        let hint = if kind::outer_payloads(binary, |_| Some(())) == Some(true) {
            "the file looks truncated; rebuild it or copy it again"
        } else {
            "it may be corrupt, or use a feature worldhost does not enable"
        };
        bail!(
            "`{}` is not a valid {}: {cause}; {hint}",
            kind::shown(path),
            kind.noun()
        )
    })
}

/// A panic inside wasmtime's compiler (a bug of wasmtime's, such as `-D debug-info` with
/// `-D address-map=n`) becomes an error that says so, instead of a Rust panic on the user's
/// terminal: while a compilation runs, a panic whose location is in the compiler's sources
/// (Cranelift, Winch, wasmtime's environ and compiler crates: not its WASI or runtime) is not
/// printed, and its message becomes the error; any other panic is printed as before.
mod compiler_panic {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, Once};

    static COMPILING: AtomicUsize = AtomicUsize::new(0);
    static LAST: Mutex<Option<String>> = Mutex::new(None);
    /// Where a compiler's panic is: these crates' sources.
    const COMPILER_CRATES: &[&str] = &[
        "/cranelift-",
        "/wasmtime-internal-cranelift-",
        "/wasmtime-internal-winch-",
        "/winch-",
        "/wasmtime-environ-",
    ];

    pub(crate) fn caught<T>(compile: impl FnOnce() -> T) -> Result<T, String> {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let printing = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                let file = info.location().map_or("", |l| l.file());
                let in_compiler = COMPILER_CRATES.iter().any(|c| file.contains(c));
                if COMPILING.load(Ordering::SeqCst) > 0 && in_compiler {
                    let at = info.location().map(|l| format!(" at {l}"));
                    *LAST.lock().unwrap_or_else(|e| e.into_inner()) = at;
                } else {
                    printing(info);
                }
            }));
        });
        COMPILING.fetch_add(1, Ordering::SeqCst);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(compile));
        COMPILING.fetch_sub(1, Ordering::SeqCst);
        result.map_err(|payload| {
            // The message is the panic's own (rayon hands a worker's panic on unchanged);
            // where it happened is what the hook saw last.
            let message = (payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            let at = LAST.lock().unwrap_or_else(|e| e.into_inner()).take();
            message + &at.unwrap_or_default()
        })
    }
}

/// Hands the memory a compilation allocated and freed back to the system, which glibc's
/// allocator keeps otherwise (docs/BENCHMARKS.md, "Settings chosen by measurement").
#[allow(unsafe_code)]
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer: it only returns whole free pages of the allocator's
    // own arenas to the system, and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

// Deserializing is unsafe in wasmtime because an artifact's machine code is trusted as is.
// worldhost deserializes three kinds of artifact only: a cache entry in a directory only the
// user can write, whose checksum was just verified on the same open file
// (`cache::load_entry`); a precompiled file the user named on the command line with
// `--allow-precompiled`, trusted as a native executable would be; and code it compiled itself
// in this process ([`Code::copied_to`]). wasmtime itself checks that an artifact was made by
// this version of wasmtime for a compatible engine configuration.

/// Loads serialized code, held in memory, into `engine`.
#[allow(unsafe_code)]
pub fn deserialize(engine: &Engine, kind: WasmKind, artifact: &[u8]) -> Result<Code> {
    // SAFETY: see above.
    Ok(match kind {
        WasmKind::Component => {
            Code::Component(unsafe { Component::deserialize(engine, artifact) }?)
        }
        WasmKind::CoreModule => Code::Module(unsafe { Module::deserialize(engine, artifact) }?),
    })
}

/// Loads the serialized code in the file at `path` into `engine`, memory-mapped (wasmtime
/// ignores what follows the artifact, such as a cache entry's trailer).
#[allow(unsafe_code)]
pub fn deserialize_file(engine: &Engine, kind: WasmKind, path: &Path) -> Result<Code> {
    // SAFETY: see above.
    Ok(match kind {
        WasmKind::Component => {
            Code::Component(unsafe { Component::deserialize_file(engine, path) }?)
        }
        WasmKind::CoreModule => Code::Module(unsafe { Module::deserialize_file(engine, path) }?),
    })
}
