//! The command handler on each command guest. Exit codes and output are those `wasmtime run`
//! 48.0.8 gives for the same component and flags.

use crate::worldhost;
use worldhost_test_artifacts as guest;

#[test]
pub(crate) fn hello() {
    worldhost()
        .args(["run", guest::HELLO])
        .run()
        .success()
        .stdout("Hello, world!\n");
}

#[test]
fn hello_by_shorthand_without_run() {
    worldhost()
        .args([guest::HELLO])
        .run()
        .success()
        .stdout("Hello, world!\n");
}

#[test]
pub(crate) fn print_args() {
    // argv[0] is the file name without its directories, and everything after the component,
    // flags included, belongs to the guest.
    worldhost()
        .args(["run", guest::PRINT_ARGS, "one", "--two", "-v", "three four"])
        .run()
        .success()
        .stdout("print-args.wasm\none\n--two\n-v\nthree four\n");
}

#[test]
fn print_args_with_argv0() {
    worldhost()
        .args(["run", "--argv0", "custom", guest::PRINT_ARGS, "x"])
        .run()
        .success()
        .stdout("custom\nx\n");
}

#[test]
pub(crate) fn print_env() {
    // Nothing is given by default, however much the host has.
    worldhost()
        .args(["run", guest::PRINT_ENV])
        .env("WORLDHOST_SECRET", "do-not-leak")
        .run()
        .success()
        .stdout("");
}

#[test]
pub(crate) fn exit_code() {
    // Rust's wasm32-wasip2 std reports every non-zero `exit(n)` as wasi:cli/exit's error, which
    // wasmtime (and worldhost) turn into 1.
    worldhost()
        .args(["run", guest::EXIT_CODE, "3"])
        .run()
        .code(1)
        .stdout("exiting with 3\n");
    worldhost()
        .args(["run", guest::EXIT_CODE, "0"])
        .run()
        .success()
        .stdout("exiting with 0\n");
}

#[test]
pub(crate) fn echo_stdin() {
    worldhost()
        .args(["run", guest::ECHO_STDIN])
        .stdin("stdin reaches the guest\nline two\n")
        .run()
        .success()
        .stdout("STDIN REACHES THE GUEST\nLINE TWO\n");
}

#[test]
pub(crate) fn read_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input.txt"), "from the host\n").unwrap();
    let grant = format!("{}::/data", dir.path().display());
    worldhost()
        .args(["run", "--dir", &grant, guest::READ_FILE, "/data/input.txt"])
        .run()
        .success()
        .stdout("from the host\n");
}

#[test]
fn read_file_without_a_preopen_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.txt");
    std::fs::write(&path, "secret\n").unwrap();
    // The guest asks for the host path itself: without a grant there is no filesystem at all.
    worldhost()
        .args(["run", guest::READ_FILE, path.to_str().unwrap()])
        .run()
        .code(1)
        .stdout("")
        .stderr_has("cannot read");
}

#[test]
pub(crate) fn write_file() {
    let dir = tempfile::tempdir().unwrap();
    let grant = format!("{}::/out", dir.path().display());
    worldhost()
        .args([
            "run",
            "--dir",
            &grant,
            guest::WRITE_FILE,
            "/out/result.txt",
            "made in wasm\n",
        ])
        .run()
        .success()
        .stdout("wrote /out/result.txt\n");
    let written = std::fs::read_to_string(dir.path().join("result.txt")).unwrap();
    assert_eq!(written, "made in wasm\n");
}

#[test]
fn write_file_into_a_read_only_dir_fails() {
    let dir = tempfile::tempdir().unwrap();
    let grant = format!("{}::/out::ro", dir.path().display());
    worldhost()
        .args([
            "run",
            "--dir",
            &grant,
            guest::WRITE_FILE,
            "/out/result.txt",
            "nope",
        ])
        .run()
        .code(1)
        .stderr_has("cannot write /out/result.txt");
    assert!(!dir.path().join("result.txt").exists());
}

#[test]
pub(crate) fn trap() {
    let out = worldhost().args(["run", guest::TRAP]).run();
    out.code(134)
        .stdout("about to trap\n")
        .stderr_has("error: `trap.wasm` trapped")
        .stderr_has("unreachable")
        // The wasm backtrace names the guest's function.
        .stderr_has("fall_into_the_abyss");
}

#[test]
pub(crate) fn probe_export() {
    // Only the test-only probe handler claims it; the shipped binary says who looks for what.
    worldhost()
        .args(["run", guest::PROBE_EXPORT])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("no handler recognises")
        .stderr_has("`worldhost:probe/ping@0.1.0`")
        .stderr_has("command: it does not export `wasi:cli/run`")
        .stderr_has("--handler");
}

#[test]
fn a_forced_handler_that_cannot_run_it_names_the_missing_export() {
    worldhost()
        .args(["run", "--handler", "command", guest::PROBE_EXPORT])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("`--handler command` cannot run")
        .stderr_has("it does not export `wasi:cli/run`")
        .stderr_has("the component exports `worldhost:probe/ping@0.1.0`");
}

#[test]
pub(crate) fn spin() {
    // One that computes, and one that waits (sleeps), which the epoch never interrupts.
    for (args, printed) in [(&[][..], "spinning\n"), (&["sleep"][..], "sleeping\n")] {
        worldhost()
            .args(["run", "-W", "timeout=300ms", guest::SPIN])
            .args(args)
            .run()
            .code(134)
            .stdout(printed)
            .stderr_has("`spin.wasm` was stopped after `-W timeout=300ms`");
    }
}

#[test]
fn spin_out_of_fuel() {
    worldhost()
        .args(["run", "-W", "fuel=5000000", guest::SPIN])
        .run()
        .code(134)
        .stderr_has("ran out of fuel (`-W fuel=5000000`)");
}

#[test]
pub(crate) fn alloc() {
    worldhost()
        .args(["run", guest::ALLOC, "8"])
        .run()
        .success()
        .stdout("holding 8 MiB\n");
}

#[test]
fn alloc_past_max_memory_size_fails() {
    // 8 MiB cannot fit in 4 MiB: the allocator's failure aborts the guest, a trap.
    worldhost()
        .args(["run", "-W", "max-memory-size=4194304", guest::ALLOC, "8"])
        .run()
        .code(134)
        .stdout("")
        .stderr_has("memory allocation of 8388608 bytes failed")
        .stderr_has("past `-W max-memory-size=4194304`, and was refused");
}
