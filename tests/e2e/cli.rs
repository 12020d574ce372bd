//! `inspect`, `handlers`, `--help` and the shorthand: what a user reads before running.

use crate::{data, worldhost};
use worldhost_test_artifacts as guest;

#[test]
fn inspect_names_the_handler_and_why() {
    worldhost()
        .args(["inspect", guest::READ_FILE])
        .run()
        .success()
        .stdout_has("handler    command: it exports `wasi:cli/run@0.2.")
        .stdout_has("wasi:cli/run@0.2.")
        .stdout_has("run: func() -> result")
        .stdout_has("pass --dir HOST[::GUEST][::ro]")
        .stdout_has("pass --env NAME[=VAL] or -S inherit-env");
}

#[test]
fn inspect_shows_exported_functions_with_signatures() {
    worldhost()
        .args(["inspect", guest::PROBE_EXPORT])
        .run()
        .success()
        .stdout_has("handler    none: no handler claims it")
        .stdout_has("worldhost:probe/ping.ping@0.1.0: func() -> string");
}

#[test]
fn inspect_json_is_for_tools() {
    let out = worldhost().args(["inspect", "--json", guest::HELLO]).run();
    out.success();
    let json: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| out.fail(&format!("not JSON: {e}")));
    assert_eq!(json["handler"], "command");
    let exports = json["exports"].as_array().unwrap();
    let run = exports
        .iter()
        .find(|e| e["interface"]["interface"] == "run")
        .unwrap_or_else(|| out.fail("no run export"));
    assert_eq!(run["functions"][0]["signature"], "func() -> result");
    assert_eq!(json["claims"][0]["handler"], "command");
}

#[test]
fn inspect_wit_prints_the_world() {
    worldhost()
        .args(["inspect", "--wit", guest::PROBE_EXPORT])
        .run()
        .success()
        .stdout_has("export worldhost:probe/ping@0.1.0;")
        .stdout_has("ping: func() -> string;");
}

#[test]
fn inspect_a_bad_file_is_the_same_error_as_run() {
    worldhost()
        .args(["inspect", &data("random.bin")])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("is not WebAssembly");
}

#[test]
fn handlers_lists_the_shipped_handlers_by_name() {
    let out = worldhost().args(["handlers"]).run();
    out.success();
    // Every shipped handler, sorted by name; a handler a developer links in (the guide's)
    // appears among them without failing this test.
    let listed = out.stdout_items();
    let shipped = ["command", "http-proxy", "invoke", "preview1", "repl"];
    let ours: Vec<&str> = (listed.iter().copied())
        .filter(|name| shipped.contains(name))
        .collect();
    assert_eq!(ours, shipped, "{}", out.stdout);
    assert!(listed.is_sorted(), "{}", out.stdout);
    out.stdout_has("recognises: an export of `wasi:cli/run`")
        .stdout_has("--invoke <CALL>");
}

#[test]
fn run_help_shows_each_handlers_flags_under_its_heading() {
    worldhost()
        .args(["run", "--help"])
        .run()
        .success()
        .stdout_has("Invoke options:")
        .stdout_has("--invoke <CALL>")
        .stdout_has("HTTP proxy options:")
        .stdout_has("Capabilities and limits (shared by every handler):")
        .stdout_has("--argv0 <NAME>")
        .stdout_has("--dir <HOST[::GUEST][::ro]>")
        .stdout_has("[possible values: command, http-proxy, invoke, preview1, repl]");
}

#[test]
fn verbose_logs_the_choice() {
    worldhost()
        .args(["-v", "run", guest::HELLO])
        .run()
        .success()
        .stdout("Hello, world!\n")
        .stderr_has("handler selected");
}

#[test]
fn no_arguments_shows_help() {
    worldhost().run().code(2).stderr_has("Usage:");
}

#[test]
fn the_readme_example_runs() {
    // README's first command: `cargo run -p worldhost -- examples/hello.wasm`.
    let example = format!("{}/../examples/hello.wasm", env!("CARGO_MANIFEST_DIR"));
    worldhost().args([&example]).run().success().stdout(
        "Hello, world! I am a WebAssembly component, run by worldhost.\n\
             I was given 0 environment variables and no files.\n",
    );
    worldhost()
        .args(["--env", "A=1", "--dir", ".::/", &example, "Ada"])
        .run()
        .success()
        .stdout(
            "Hello, Ada! I am a WebAssembly component, run by worldhost.\n\
             I was given 1 environment variables and a directory at /.\n",
        );
}

#[test]
fn a_reader_that_goes_away_is_no_panic() {
    // `true` exits before worldhost has loaded the component, so its write meets a closed pipe.
    let line = format!(
        "'{}' inspect '{}' | true; '{}' handlers | true",
        env!("CARGO_BIN_EXE_worldhost"),
        guest::HELLO,
        env!("CARGO_BIN_EXE_worldhost")
    );
    crate::Invocation::new("sh")
        .args(["-c", &line])
        .run()
        .success()
        .stdout("");
}
