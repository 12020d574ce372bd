//! What a file holds, judged from its bytes before anything is compiled, and the one-paragraph
//! error that says what it is when it is not what is wanted.

use anyhow::{Result, bail};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use wasmparser::{Chunk, Parser, Payload};
use wasmtime::{Engine, Precompiled};

/// What a file holds.
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

/// The two kinds of WebAssembly worldhost compiles and runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
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

/// Feeds the outer payloads of a binary to `visit` (nested modules and components are skipped
/// whole), until the end or until `visit` returns `None`. Returns `None` when the bytes do not
/// parse or `visit` stopped, `Some(true)` when they end before their last section does (a
/// truncated file), `Some(false)` at a proper end.
pub fn outer_payloads<'a>(
    binary: &'a [u8],
    mut visit: impl FnMut(Payload<'a>) -> Option<()>,
) -> Option<bool> {
    let mut parser = Parser::new(0);
    let mut offset = 0;
    loop {
        // A nested section that runs past the end of the bytes: cut off.
        let Some(rest) = binary.get(offset..) else {
            return Some(true);
        };
        // Not at the end yet: a section that does not fit in what is left is cut off; at the
        // end, the parser is told there is no more.
        let Chunk::Parsed { consumed, payload } = parser.parse(rest, rest.is_empty()).ok()? else {
            return Some(true);
        };
        offset += consumed;
        match payload {
            // The outer parser resumes after the nested one's bytes, which are not fed to it.
            Payload::ModuleSection {
                unchecked_range, ..
            }
            | Payload::ComponentSection {
                unchecked_range, ..
            } => offset += unchecked_range.len(),
            Payload::End(_) => return Some(false),
            payload => visit(payload)?,
        }
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

/// Reads the file at `path` and checks that it holds a component, in the binary format or as
/// text; returns the binary. Says what the file is when it is not a component.
pub fn read_component(path: &Path) -> Result<Vec<u8>> {
    match read_wasm(path)? {
        (binary, WasmKind::Component) => Ok(binary),
        (_, WasmKind::CoreModule) => bail!(
            "`{}` is a core WebAssembly module, not a component",
            shown(path)
        ),
    }
}

/// Reads the file at `path` and checks that it holds WebAssembly, a component or a core module,
/// in the binary format or as text; returns the binary and its kind. Says what the file is when
/// it is neither.
pub fn read_wasm(path: &Path) -> Result<(Vec<u8>, WasmKind)> {
    let bytes = read_file(path, Reading::AsGiven)?;
    wasm_of(path, bytes)
}

/// Checks that `bytes`, read from `path`, hold WebAssembly, as [`read_wasm`] does.
pub fn wasm_of(path: &Path, bytes: Vec<u8>) -> Result<(Vec<u8>, WasmKind)> {
    let shown = shown(path);
    Ok(match FileKind::of(&bytes) {
        FileKind::Component => (bytes, WasmKind::Component),
        FileKind::CoreModule => (bytes, WasmKind::CoreModule),
        FileKind::Text => {
            let binary = match wat::parse_bytes(&bytes) {
                Ok(binary) => binary.into_owned(),
                Err(e) => bail!("`{shown}` is not valid WebAssembly text: {}", wat_error(&e)),
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

/// A precompiled artifact is machine code: it is loaded only when the user said so, as
/// wasmtime requires `--allow-precompiled` (whatever the file is called, since the kind is
/// judged from the bytes).
pub fn refuse_unless_allowed(path: &Path, allow_precompiled: bool) -> Result<()> {
    if allow_precompiled {
        return Ok(());
    }
    bail!(
        "`{}` is a precompiled artifact: machine code for this machine (from `worldhost \
         compile` or `wasmtime compile`), which would run unchecked, as a native program does; \
         if you made it or trust it, pass `--allow-precompiled`; otherwise run the .wasm it was \
         compiled from",
        shown(path)
    )
}

/// The error for a precompiled artifact that does not load: it says to compile it again.
pub fn cannot_load_precompiled(path: &Path, kind: WasmKind, e: anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "`{}` is a precompiled {} that this worldhost cannot load: {e:#}. It was made by \
         another version of worldhost or wasmtime, for another machine, or with other \
         settings (`-W fuel` and `-W timeout` must be given to both `compile` and `run`, or to \
         neither); compile it again from its .wasm: `worldhost compile app.wasm -o {}`",
        shown(path),
        kind.noun(),
        file_name(path),
    )
}

/// The file name without its directories: argv[0] for commands, and the name in messages.
pub fn file_name(path: &Path) -> String {
    if is_in_memory(path) {
        let shown = shown(path);
        return Path::new(&shown)
            .file_name()
            .map_or(shown.clone(), |n| n.to_string_lossy().into_owned());
    }
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The most bytes worldhost reads of a file it is given (a component, `--config`, `-H @FILE`):
/// a path that leads to an endless file (a link to `/dev/zero`) is refused past it, not read
/// until memory runs out.
pub const MAX_FILE_SIZE: u64 = 1 << 30;

/// How a file is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Whatever the path is, as the user gave it on the command line (`<(cat app.wasm)`, a
    /// FIFO, is read).
    AsGiven,
    /// A regular file only: a reload's, which nobody watches. It is opened without blocking
    /// (a FIFO would block the reload, and every reload after it) and checked before a byte is
    /// read.
    RegularOnly,
}

/// Reads the file at `path` whole, from one open descriptor, up to [`MAX_FILE_SIZE`]; each
/// error names the path and says what to do.
pub fn read_file(path: &Path, reading: Reading) -> Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let shown = shown(path);
    let mut options = std::fs::File::options();
    options.read(true);
    if reading == Reading::RegularOnly {
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    let file = options.open(path).or_else(|e| match e.kind() {
        ErrorKind::NotFound => bail!("`{shown}` does not exist; check the path"),
        ErrorKind::PermissionDenied => {
            bail!("cannot read `{shown}`: permission denied; check its permissions")
        }
        _ => bail!("cannot read `{shown}`: {e}"),
    })?;
    let meta = file
        .metadata()
        .map_err(|e| anyhow::anyhow!("cannot read `{shown}`: {e}"))?;
    let kind = meta.file_type();
    if kind.is_dir() {
        bail!("`{shown}` is a directory; pass the component file inside it");
    }
    if reading == Reading::RegularOnly && !kind.is_file() {
        let what = file_type_phrase(kind);
        bail!("`{shown}` is {what}, not a regular file; point it at the component's file");
    }
    if meta.len() > MAX_FILE_SIZE {
        bail!(too_large(&shown));
    }
    read_bounded(file, &shown)
}

/// Reads `from` to its end, up to [`MAX_FILE_SIZE`]; `shown` names it in errors.
pub fn read_bounded(from: impl std::io::Read, shown: &str) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    from.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot read `{shown}`: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        bail!(too_large(shown));
    }
    Ok(bytes)
}

fn too_large(shown: &str) -> String {
    format!(
        "`{shown}` holds more than {} GiB, the most worldhost reads of a file; is it the file \
         you meant (a link to a device, say)?",
        MAX_FILE_SIZE >> 30
    )
}

/// What a file of type `kind` is, as an error says it: "a symbolic link", "a FIFO"…
pub fn file_type_phrase(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if kind.is_file() {
        "a regular file"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a WebAssembly text error says, without the line of the file it quotes (wat's own
/// message shows it): the file may not be WebAssembly at all, and a line of it is not for
/// the log.
fn wat_error(e: &wat::Error) -> String {
    let full = e.to_string();
    // wat's message: the error's own words first, then where (`--> path:line:col`) and the
    // quoted line.
    let message = full.lines().next().unwrap_or("").trim();
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let at = (full.lines())
        .find_map(|line| line.trim().strip_prefix("--> "))
        .and_then(|at| at.rsplit(':').nth(1).zip(at.rsplit(':').next()));
    match at {
        Some((line, col)) => format!("{message} at line {line}, column {col}"),
        None => message.to_string(),
    }
}

/// Where [`in_memory`] files are found: a path under it names a copy in memory, not a file
/// anyone can change or load again.
const IN_MEMORY: &str = "/proc/self/fd";

/// The names the in-memory copies stand for, by their paths.
static SHOWN: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());

/// Bytes held in an anonymous file in memory (a memfd), opened by every later step by its path
/// (`/proc/self/fd/N`) as a file on disk would be; named in messages as what it copies. It
/// lives while this value does (and while code is mapped from it).
pub struct InMemory {
    file: std::fs::File,
    path: PathBuf,
}

impl InMemory {
    /// The path it is opened by.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file.
    pub fn file(&self) -> &std::fs::File {
        &self.file
    }
}

impl Drop for InMemory {
    fn drop(&mut self) {
        let mut shown = SHOWN.lock().unwrap_or_else(|e| e.into_inner());
        shown.retain(|(path, _)| *path != self.path);
    }
}

/// `bytes` in an [`InMemory`] file, named `shown` in messages (`app.wasm`, for a reload's copy;
/// `-` for stdin). What `-` (stdin) is read into, what a server's reload compiles from, and what
/// the containerd shim holds an image's layer in.
pub fn in_memory(shown: &str, bytes: &[u8]) -> std::io::Result<InMemory> {
    use std::io::Write as _;
    use std::os::fd::AsRawFd as _;
    let fd = rustix::fs::memfd_create("worldhost", rustix::fs::MemfdFlags::CLOEXEC)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)?;
    let path = PathBuf::from(format!("{IN_MEMORY}/{}", file.as_raw_fd()));
    let mut names = SHOWN.lock().unwrap_or_else(|e| e.into_inner());
    names.retain(|(p, _)| *p != path);
    names.push((path.clone(), shown.to_string()));
    Ok(InMemory { file, path })
}

/// Whether `path` names an [`in_memory`] copy.
pub fn is_in_memory(path: &Path) -> bool {
    path.starts_with(IN_MEMORY)
}

/// How `path` is named to the user: an [`in_memory`] copy as what it copies, any other path as
/// it is.
pub fn shown(path: &Path) -> String {
    if is_in_memory(path) {
        let names = SHOWN.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, name)) = names.iter().find(|(p, _)| p == path) {
            return name.clone();
        }
    }
    path.display().to_string()
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
    fn a_binary_cut_short_is_told_from_a_whole_one() {
        let binary = wat::parse_str(r#"(module (func (export "f")) (memory 1))"#).unwrap();
        assert_eq!(outer_payloads(&binary, |_| Some(())), Some(false));
        let cut = &binary[..binary.len() - 1];
        assert_eq!(outer_payloads(cut, |_| Some(())), Some(true));
        let component = wat::parse_str(
            r#"(component (core module (func (export "f")) (memory 1)) (core module))"#,
        )
        .unwrap();
        assert_eq!(outer_payloads(&component, |_| Some(())), Some(false));
        let cut = &component[..component.len() - 12];
        assert_eq!(outer_payloads(cut, |_| Some(())), Some(true));
    }
}
