//! Builds every guest crate under `tests/guests` for `wasm32-wasip2` (and the preview-1 ones for
//! `wasm32-wasip1`), the Python guests of `tests/guests-py` with componentize-py and the
//! JavaScript ones of `tests/guests-js` with componentize-qjs, and writes
//! `guests.rs` into OUT_DIR: one `pub const NAME: &str` with the absolute path of each
//! component, and `foreach_guest!`, which applies a macro to every guest's snake-case name.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .join("../..")
        .canonicalize()
        .expect("the repository root exists");
    let guests = root.join("tests/guests");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let target_dir = out_dir.join("guests-target");

    println!("cargo:rerun-if-changed={}", guests.display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!(
        "cargo:rerun-if-changed={}",
        root.join("tests/guests-py").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        root.join("tests/guests-js").display()
    );
    println!("cargo:rerun-if-env-changed=COMPONENTIZE_PY");
    println!("cargo:rerun-if-env-changed=COMPONENTIZE_QJS");

    let names = guest_names(&guests);
    let mut build = guest_build(&guests, &target_dir, "wasm32-wasip2");
    let status = build.status().expect("cargo can be started");
    if !status.success() {
        panic!(
            "building the test guests in {} failed ({status}); is the target installed? \
             `rustup target add wasm32-wasip2`",
            guests.display()
        );
    }

    // The guests that are plain programs (`src/main.rs`) are built for WASI preview 1 as well,
    // as core modules: the same source, run by the preview1 handler.
    let programs: Vec<&String> = names
        .iter()
        .filter(|name| guests.join(name).join("src/main.rs").exists())
        .collect();
    let mut build_p1 = guest_build(&guests, &target_dir, "wasm32-wasip1");
    build_p1.args(programs.iter().flat_map(|name| ["-p", name.as_str()]));
    let status = build_p1.status().expect("cargo can be started");
    if !status.success() {
        panic!(
            "building the preview-1 test guests failed ({status}); is the target installed? \
             `rustup target add wasm32-wasip1`"
        );
    }

    let release = target_dir.join("wasm32-wasip2/release");
    let mut consts = String::new();
    for name in &names {
        let snake = name.replace('-', "_");
        // A `bin` crate keeps its name; a `cdylib` gets underscores.
        let path = [
            release.join(format!("{name}.wasm")),
            release.join(format!("{snake}.wasm")),
        ]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "guest `{name}` built, but no {name}.wasm in {}",
                release.display()
            )
        });
        consts.push_str(&format!(
            "/// The `{name}` guest component (tests/guests/{name}).\npub const {}: &str = {:?};\n",
            snake.to_uppercase(),
            path.display().to_string()
        ));
    }
    for name in &programs {
        let path = target_dir.join(format!("wasm32-wasip1/release/{name}.wasm"));
        consts.push_str(&format!(
            "/// The `{name}` guest built for WASI preview 1: a core module.\npub const {}_P1: &str = {:?};\n",
            name.replace('-', "_").to_uppercase(),
            path.display().to_string()
        ));
    }
    for (language, guests) in [(&PYTHON, PYTHON_GUESTS), (&JAVASCRIPT, JAVASCRIPT_GUESTS)] {
        for (name, world) in guests {
            let path = build_interpreted_guest(&root, &out_dir, language, name, world);
            consts.push_str(&format!(
                "/// The `{name}` {} guest ({}/{name}), built by {}.\npub const {}: &str = {:?};\n",
                language.name,
                language.dir,
                language.tool,
                name.replace('-', "_").to_uppercase(),
                path.display().to_string()
            ));
        }
    }
    let calls: String = names
        .iter()
        .map(|name| format!("$m!({});", name.replace('-', "_")))
        .collect();
    consts.push_str(&format!(
        "/// Applies `$m!(name)` to every guest's snake-case name.\n\
         #[macro_export]\nmacro_rules! foreach_guest {{ ($m:ident) => {{ {calls} }}; }}\n"
    ));
    fs::write(out_dir.join("guests.rs"), consts).expect("OUT_DIR is writable");
}

/// The Python guests under `tests/guests-py` and the world each targets: large components (a
/// whole CPython interpreter, about 18 MB), as real Python and JavaScript components are.
const PYTHON_GUESTS: &[(&str, &str)] = &[
    ("hello-py", "command"),
    ("http-py", "proxy"),
    ("command-p3-py", "command-p3"),
    ("service-p3-py", "service-p3"),
];

/// The JavaScript guests under `tests/guests-js` (QuickJS, about 1.7 MB) and their worlds.
const JAVASCRIPT_GUESTS: &[(&str, &str)] = &[("service-p3-js", "service-p3")];

/// A language whose guests are an interpreter and a source file, built by a tool.
struct Language {
    name: &'static str,
    /// The folder of its guests, under the repository root: one folder per guest, and `wit`.
    dir: &'static str,
    /// The tool's name, and the variable that names another copy of it.
    tool: &'static str,
    tool_var: &'static str,
    /// Where `scripts/setup` installs the tool, under the repository root.
    installed: &'static str,
    /// The guest's one source file.
    source: &'static str,
    /// The tool's arguments, given the wit folder, the world and the output file.
    args: fn(&Path, &str, &Path) -> Vec<std::ffi::OsString>,
}

const PYTHON: Language = Language {
    name: "Python",
    dir: "tests/guests-py",
    tool: "componentize-py",
    tool_var: "COMPONENTIZE_PY",
    installed: "target/py/bin/componentize-py",
    source: "app.py",
    args: |wit, world, out| {
        let mut args = vec!["-d".into(), wit.into(), "-w".into(), world.into()];
        args.extend(["componentize".into(), "app".into(), "-o".into(), out.into()]);
        args
    },
};

const JAVASCRIPT: Language = Language {
    name: "JavaScript",
    dir: "tests/guests-js",
    tool: "componentize-qjs",
    tool_var: "COMPONENTIZE_QJS",
    installed: "target/js/node_modules/.bin/componentize-qjs",
    source: "app.js",
    args: |wit, world, out| {
        let mut args = vec!["--wit".into(), wit.into(), "-n".into(), world.into()];
        args.extend(["--js".into(), "app.js".into(), "-o".into(), out.into()]);
        args
    },
};

/// Builds `DIR/NAME/SOURCE` into a component with the language's tool, in OUT_DIR (a tool may
/// write beside the source, as componentize-py's `__pycache__`, which must not land in the
/// source tree).
fn build_interpreted_guest(
    root: &Path,
    out_dir: &Path,
    language: &Language,
    name: &str,
    world: &str,
) -> PathBuf {
    let source = root.join(language.dir);
    let work = out_dir.join(language.dir).join(name);
    fs::create_dir_all(&work).expect("OUT_DIR is writable");
    // componentize-py bundles what is beside the app: the `__pycache__` of an earlier build
    // would make this one differ.
    let _ = fs::remove_dir_all(work.join("__pycache__"));
    fs::copy(
        source.join(name).join(language.source),
        work.join(language.source),
    )
    .expect("the guest's source exists");
    let component = work.join(format!("{name}.wasm"));
    let tool = env::var_os(language.tool_var)
        .map(PathBuf::from)
        .or_else(|| Some(root.join(language.installed)).filter(|path| path.exists()))
        .unwrap_or_else(|| language.tool.into());
    let status = Command::new(&tool)
        .args((language.args)(&source.join("wit"), world, &component))
        .current_dir(&work)
        .env("RUST_BACKTRACE", "0")
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({}): {e}; the test set-up installs it: `scripts/setup`",
                language.tool,
                tool.display()
            )
        });
    if !status.success() {
        panic!(
            "{} failed to build {}/{name} ({status})",
            language.tool, language.dir
        );
    }
    component
}

/// `cargo build --release --target TARGET` of the guests' workspace, into `target_dir`.
fn guest_build(guests: &Path, target_dir: &Path, target: &str) -> Command {
    let mut build = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    build
        .args(["build", "--release", "--target", target, "--manifest-path"])
        .arg(guests.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir)
        // Flags meant for the host build (coverage, sanitizers, -C target-cpu) must not reach
        // the guests.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_PROFILE_RELEASE_DEBUG");
    build
}

/// The guest crates: every directory under `tests/guests` with a Cargo.toml, sorted.
fn guest_names(guests: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(guests)
        .expect("tests/guests exists")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join("Cargo.toml").exists())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
