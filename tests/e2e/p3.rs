//! WASI 0.3 worlds: a command (tests/guests/p3-command) built with the wasip3 crate, whose
//! every word goes through 0.3's interfaces, and async exports. Output and exit codes are
//! those wasmtime 48 gives them.

use crate::worldhost;
use worldhost_test_artifacts as guest;

#[test]
pub(crate) fn p3_command() {
    worldhost()
        .args(["run", guest::P3_COMMAND])
        .run()
        .success()
        .stdout("Hello from WASI 0.3!\n");
    // The shorthand and the explicit handler reach the same world.
    worldhost()
        .args(["--handler", "command", guest::P3_COMMAND])
        .run()
        .success()
        .stdout("Hello from WASI 0.3!\n");
}

#[test]
fn p3_command_gets_its_arguments() {
    worldhost()
        .args(["run", guest::P3_COMMAND, "args", "--two", "three four"])
        .run()
        .success()
        .stdout("p3_command.wasm\nargs\n--two\nthree four\n");
}

#[test]
fn p3_command_gets_only_the_environment_it_is_given() {
    worldhost()
        .args([
            "run",
            "--env",
            "GIVEN=yes",
            guest::P3_COMMAND,
            "env",
            "GIVEN",
        ])
        .run()
        .success()
        .stdout("GIVEN=yes\n");
    worldhost()
        .args(["run", guest::P3_COMMAND, "env", "WORLDHOST_SECRET"])
        .env("WORLDHOST_SECRET", "do-not-leak")
        .run()
        .success()
        .stdout("WORLDHOST_SECRET is not set\n");
}

#[test]
fn p3_command_reads_a_granted_directory_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "read through WASI 0.3\n").unwrap();
    for grant in [
        format!("{}::/", dir.path().display()),
        format!("{}::/::ro", dir.path().display()),
    ] {
        worldhost()
            .args(["run", "--dir", &grant, guest::P3_COMMAND, "read", "in.txt"])
            .run()
            .success()
            .stdout("read through WASI 0.3\n");
    }
    worldhost()
        .args(["run", guest::P3_COMMAND, "read", "in.txt"])
        .run()
        .code(1)
        .stdout("no directory is preopened\n");
}

#[test]
fn p3_command_exit_status_is_the_process_s() {
    worldhost()
        .args(["run", guest::P3_COMMAND, "exit", "7"])
        .run()
        .code(7)
        .stdout("");
    worldhost()
        .args(["run", guest::P3_COMMAND, "fail"])
        .run()
        .code(1);
}

#[test]
fn p3_command_trap_exits_134() {
    worldhost()
        .args(["run", guest::P3_COMMAND, "trap"])
        .run()
        .code(134)
        .stderr_has("error: `p3_command.wasm` trapped")
        .stderr_has("unreachable");
}

#[test]
fn p3_command_timeout_stops_a_computing_and_a_waiting_guest() {
    for what in ["spin", "sleep"] {
        worldhost()
            .args(["run", "-W", "timeout=300ms", guest::P3_COMMAND, what])
            .run()
            .code(134)
            .stderr_has("`p3_command.wasm` was stopped after `-W timeout=300ms`");
    }
}

#[test]
fn p3_command_without_wasi_0_3_says_which_key_turned_it_off() {
    worldhost()
        .args(["run", "-S", "p3=n", guest::P3_COMMAND])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("WASI 0.3")
        .stderr_has("`-S p3=n`");
}

#[test]
fn p3_command_is_described_by_inspect() {
    worldhost()
        .args(["inspect", guest::P3_COMMAND])
        .run()
        .success()
        .stdout_has("wasi:cli/run@0.3.0")
        .stdout_has("command");
}

#[test]
pub(crate) fn p3_both() {
    // Both versions of the world: 0.3 first, as wasmtime 48 chooses. With `-S p3=n` it would
    // run as 0.2, but its 0.3 half imports 0.3's interfaces, which that key leaves unlinked
    // (as wasmtime does): the error says so.
    worldhost()
        .args(["run", guest::P3_BOTH])
        .run()
        .success()
        .stdout("ran as WASI 0.3\n");
    worldhost()
        .args(["run", "-S", "p3=n", guest::P3_BOTH])
        .run()
        .code(1)
        .stdout("")
        .stderr_has("of WASI 0.3, which is not linked here: `-S p3=n` turns it off");
    worldhost()
        .args(["inspect", guest::P3_BOTH])
        .run()
        .success()
        .stdout_has(
            "it exports `wasi:cli/run@0.3.0` (WASI 0.3), and `@0.2.0` too: it runs as WASI 0.3",
        );
}

#[test]
pub(crate) fn p3_invoke() {
    // `async func`s are called in the store's event loop, as wasmtime run --invoke calls
    // them; a plain function beside them too, one line per call, on one instance.
    worldhost()
        .args([
            "run",
            "--invoke",
            "slow-add(1, 2)",
            "--invoke",
            "greet(\"Ada\")",
            "--invoke",
            "mul(6, 7)",
            guest::P3_INVOKE,
        ])
        .run()
        .success()
        .stdout("3\n\"Hello, Ada!\"\n42\n");
    // The shorthand of a call.
    worldhost()
        .args(["run", guest::P3_INVOKE, "greet", "Ada"])
        .run()
        .success()
        .stdout("\"Hello, Ada!\"\n");
    worldhost()
        .args(["run", "--invoke", "crash()", guest::P3_INVOKE])
        .run()
        .code(134)
        .stderr_has("error: `p3_invoke.wasm` trapped");
}

#[test]
fn p3_invoke_names_a_stream_or_future_it_cannot_pass() {
    // wasmtime 48 panics on these.
    for (call, says) in [
        ("numbers()", "numbers` returns `stream<u8>`"),
        ("later(1)", "later` takes `value: future<u32>`"),
    ] {
        worldhost()
            .args(["run", "--invoke", call, guest::P3_INVOKE])
            .run()
            .code(1)
            .one_paragraph_error()
            .stderr_has(says)
            .stderr_has("call it from a component instead");
    }
}

#[test]
fn a_wasi_0_3_prerelease_is_refused_with_what_to_rebuild_against() {
    // (An export at a prerelease is refused by the claim: core/tests/world.rs.)
    worldhost()
        .args(["run", &crate::data("p3-prerelease.wat")])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("uses `wasi:cli/environment@0.3.0-rc-2026-03-15`, a prerelease of WASI 0.3")
        .stderr_has("it implements the release, 0.3.0; rebuild the component against it");
}
