//! The preview1 handler: the std-only guests built for `wasm32-wasip1`, as core modules, with
//! the same shared settings. Output and exit codes are those of `wasmtime run` 48.0.8
//! (`scripts/compare-wasmtime`).

use crate::{data, worldhost};
use worldhost_test_artifacts as guest;

#[test]
fn hello() {
    worldhost()
        .args([guest::HELLO_P1])
        .run()
        .success()
        .stdout("Hello, world!\n");
}

#[test]
fn args_with_the_file_name_as_argv0() {
    worldhost()
        .args(["run", guest::PRINT_ARGS_P1, "one", "--two"])
        .run()
        .success()
        .stdout("print-args.wasm\none\n--two\n");
}

#[test]
fn argv0_as_for_components() {
    worldhost()
        .args(["run", "--argv0", "custom", guest::PRINT_ARGS_P1, "x"])
        .run()
        .success()
        .stdout("custom\nx\n");
}

#[test]
fn env_only_as_granted() {
    worldhost()
        .args(["run", "--env", "A=1", guest::PRINT_ENV_P1])
        .env("WH_SECRET", "no")
        .run()
        .success()
        .stdout("A=1\n");
}

#[test]
fn exit_code_is_the_guests_own() {
    // Preview 1's proc_exit carries the code itself, unlike wasi:cli/exit 0.2.
    worldhost()
        .args(["run", guest::EXIT_CODE_P1, "3"])
        .run()
        .code(3)
        .stdout("exiting with 3\n");
}

#[test]
fn a_file_in_a_preopened_dir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input.txt"), "preview one\n").unwrap();
    let grant = format!("{}::/data::ro", dir.path().display());
    worldhost()
        .args([
            "run",
            "--dir",
            &grant,
            guest::READ_FILE_P1,
            "/data/input.txt",
        ])
        .run()
        .success()
        .stdout("preview one\n");
    worldhost()
        .args(["run", guest::READ_FILE_P1, "/data/input.txt"])
        .run()
        .code(1)
        .stderr_has("cannot read /data/input.txt");
}

#[test]
fn a_trap_exits_134_with_the_backtrace() {
    worldhost()
        .args(["run", guest::TRAP_P1])
        .run()
        .code(134)
        .stdout("about to trap\n")
        .stderr_has("`trap.wasm` trapped: wasm `unreachable` instruction executed")
        .stderr_has("fall_into_the_abyss");
}

#[test]
fn timeout_applies_to_modules_too() {
    worldhost()
        .args(["run", "-W", "timeout=300ms", guest::SPIN_P1])
        .run()
        .code(134)
        .stderr_has("ran past its time limit");
}

#[test]
fn inspect_describes_a_module() {
    worldhost()
        .args(["inspect", guest::HELLO_P1])
        .run()
        .success()
        .stdout_has("handler    preview1: it has a core module exporting `_start`")
        .stdout_has("wasi_snapshot_preview1::fd_write")
        .stdout_has("command      no: it is a core module, not a component");
}

#[test]
fn a_module_text_with_start_runs() {
    worldhost()
        .args(["run", &data("core-module.wat")])
        .run()
        .success()
        .stdout("");
}
