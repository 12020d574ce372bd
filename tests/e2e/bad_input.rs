//! Bad input of every kind: a one-paragraph error that says what was found and what to do,
//! exit 1 (usage errors: 2), and never a panic (the runner fails any output with "panicked").

use crate::{data, worldhost};
use worldhost_test_artifacts as guest;

#[test]
fn missing_file() {
    worldhost()
        .args(["run", "/no/such/app.wasm"])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("`/no/such/app.wasm` does not exist");
}

#[test]
fn a_directory_instead_of_a_file() {
    let dir = tempfile::tempdir().unwrap();
    worldhost()
        .args(["run", dir.path().to_str().unwrap()])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("is a directory");
}

#[test]
fn empty_file() {
    worldhost()
        .args(["run", &data("empty.wasm")])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("is empty (0 bytes)");
}

#[test]
fn random_bytes() {
    worldhost()
        .args(["run", &data("random.bin")])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("is not WebAssembly")
        .stderr_has("4c 12 86 a0");
}

#[test]
fn a_text_file() {
    worldhost()
        .args([&data("notes.txt")])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("is not WebAssembly");
}

#[test]
fn truncated_component() {
    let dir = tempfile::tempdir().unwrap();
    let whole = std::fs::read(guest::HELLO).unwrap();
    let path = dir.path().join("half.wasm");
    std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
    worldhost()
        .args(["run", path.to_str().unwrap()])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("is not a valid component")
        .stderr_has("truncated");
}

#[test]
fn a_core_module_without_start() {
    // An empty module: a core module, but no handler's: each says why.
    worldhost()
        .args(["run", &data("core-module.wasm")])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("command: it is a core module, not a component")
        .stderr_has("preview1: it is a core module without a `_start` export");
}

#[test]
fn malformed_text() {
    worldhost()
        .args(["run", &data("bad.wat")])
        .run()
        .code(1)
        .stderr_has("is not valid WebAssembly text")
        .stderr_has("bad.wat`")
        .stderr_has("at line ");
}

#[test]
fn a_component_no_handler_knows() {
    worldhost()
        .args(["run", &data("empty-component.wat")])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("no handler recognises")
        .stderr_has("it exports nothing")
        .stderr_has("--handler NAME");
}

#[test]
fn unknown_handler_lists_the_registered_ones() {
    worldhost()
        .args(["run", "--handler", "comand", guest::HELLO])
        .run()
        .code(2)
        .stderr_has("invalid value 'comand'")
        .stderr_has("[possible values: command, http-proxy, invoke, preview1, repl]");
}

#[test]
fn missing_dir_is_named() {
    worldhost()
        .args(["run", "--dir", "/no/such/dir::/data", guest::HELLO])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("the host directory `/no/such/dir` does not exist");
}

#[test]
fn unknown_wasi_option() {
    worldhost()
        .args(["run", "-S", "inherit-everything", guest::HELLO])
        .run()
        .code(2)
        .stderr_has("unknown -S / --wasi option: inherit-everything");
}

#[test]
fn bad_timeout() {
    worldhost()
        .args(["run", "-W", "timeout=soon", guest::HELLO])
        .run()
        .code(2)
        .stderr_has("failed to parse -W option `timeout=soon`");
}

#[test]
fn no_component() {
    worldhost()
        .args(["run"])
        .run()
        .code(2)
        .stderr_has("<COMPONENT>");
}

#[cfg(unix)]
#[test]
fn an_argument_that_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"caf\xe9");
    worldhost()
        .args([
            std::ffi::OsStr::new("run"),
            std::ffi::OsStr::new(guest::PRINT_ARGS),
            bad,
        ])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("is not valid UTF-8");
}

#[test]
fn an_unknown_flag_is_a_usage_error_not_a_path() {
    for args in [
        &["run", "--no-such-flag", guest::HELLO][..],
        &["--no-such-flag", guest::HELLO],
        &["serve", "--no-such-flag", guest::HTTP_HELLO],
    ] {
        worldhost()
            .args(args)
            .run()
            .code(2)
            .stderr_has("unexpected argument '--no-such-flag' found");
    }
    // A close one is suggested.
    worldhost()
        .args(["run", "--no-cahce", guest::HELLO])
        .run()
        .code(2)
        .stderr_has("a similar argument exists: '--no-cache'");
}

#[test]
fn options_after_a_server_are_refused_not_dropped() {
    // Typed in this natural order, `--addr` would reach the guest and the server would
    // listen on the default 0.0.0.0:8080.
    for args in [
        &[guest::HTTP_HELLO, "--addr", "127.0.0.1:0"][..],
        &["serve", guest::HTTP_HELLO, "--addr", "127.0.0.1:0"],
    ] {
        worldhost()
            .args(args)
            .run()
            .code(2)
            .one_paragraph_error()
            .stderr_has("passes no arguments to the guest")
            .stderr_has("--addr 127.0.0.1:0 ")
            .stderr_has("worldhost's options go before the component");
    }
}

#[test]
fn an_option_after_a_command_goes_to_it_with_a_warning() {
    worldhost()
        .args([guest::PRINT_ARGS, "--dir", "/", "plain"])
        .run()
        .success()
        .stdout("print-args.wasm\n--dir\n/\nplain\n")
        .stderr_has("`--dir` after")
        .stderr_has("goes to the guest as its argument");
    // A word that is no option of worldhost's passes in silence.
    worldhost()
        .args([guest::PRINT_ARGS, "--color", "-x"])
        .run()
        .success()
        .stderr_is_empty();
}
