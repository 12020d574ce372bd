//! Large, real components: a CPython interpreter in a `wasi:cli/command` and in a
//! `wasi:http/proxy`, and in their WASI 0.3 versions, `async def run` and `async def handle`
//! (tests/guests-py, built by componentize-py, about 18–21 MB each). Each test
//! has a cache of its own, so each compiles the guest: the cold path is what they test.

use crate::precompiled::{cached_in, entries};
use crate::serve::{COMPLETED, PROVISIONAL, endless_requests_leave_room_for};
use crate::server::{Server, assert_echoes, get};
use worldhost_test_artifacts as guest;

#[test]
fn a_python_command_runs_and_starts_from_the_cache_the_second_time() {
    let cache = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        cached_in(cache.path())
            .args(["run", "--env", "GREETING=hi", guest::HELLO_PY, "a", "b c"])
            .run()
            .success()
            .stdout_has("Hello from Python 3.")
            .stdout_has("args: ['a', 'b c']\nGREETING=hi\n");
    }
    assert_eq!(entries(cache.path()).len(), 1);
    cached_in(cache.path())
        .args([guest::HELLO_PY, "exit=3"])
        .run()
        .code(1);
}

#[test]
fn two_processes_compiling_the_same_component_at_once_both_succeed() {
    let cache = tempfile::tempdir().unwrap();
    let runs: Vec<_> = (0..2)
        .map(|i| {
            let dir = cache.path().to_path_buf();
            std::thread::spawn(move || {
                cached_in(&dir)
                    .args([guest::HELLO_PY, &format!("run{i}")])
                    .run()
            })
        })
        .collect();
    for (i, run) in runs.into_iter().enumerate() {
        run.join()
            .unwrap()
            .success()
            .stdout_has(&format!("args: ['run{i}']"));
    }
    // One entry, no half-written file left behind.
    let entries = entries(cache.path());
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].to_string_lossy().ends_with(".whc"));
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "the Winch start is on x86_64 only"
)]
fn a_python_proxy_is_served() {
    let cache = tempfile::tempdir().unwrap();
    let mut server = Server::start_with_env(
        &[("XDG_CACHE_HOME", cache.path())],
        "run",
        &["-v", guest::HTTP_PY],
    );
    let (status, body) = get(&server.url("/py?x=1"));
    assert_eq!(
        (status, body.as_str()),
        (200, "Hello from Python! You asked for /py?x=1\n")
    );
    // Chosen by its world (`run`, not `serve`), the proxy was compiled for the server's start
    // engine at once (the handler is guessed from its export names before compiling), then
    // for its full engine in the background; nothing else.
    assert!(server.stderr().contains(PROVISIONAL), "{}", server.stderr());
    server.wait_for(COMPLETED);
    assert_eq!(get(&server.url("/again")).0, 200);
    server.stop("TERM");
    assert_eq!(entries(cache.path()).len(), 2);
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "the Winch start is on x86_64 only"
)]
fn endless_guests_do_not_starve_others_while_the_full_code_compiles() {
    // A cold start serves from Winch's code while Cranelift's compiles in the background:
    // Winch's guests must yield at the epoch ticks too.
    on_winch_code(&["--shutdown-grace", "1s"], |server| {
        endless_requests_leave_room_for(server, "/healthy")
    });
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "the Winch start is on x86_64 only"
)]
fn under_w_timeout_a_guest_of_the_first_code_is_stopped_at_its_deadline() {
    on_winch_code(&["-W", "timeout=1s"], |server| {
        assert_eq!(get(&server.url("/spin")).0, 504);
        assert_eq!(get(&server.url("/")).0, 200);
    });
}

/// Serves the Python proxy from an empty cache with `flags`, and runs `check` while the server
/// still serves from Winch's code (Cranelift's compiles in the background, on one core, for
/// many seconds on this guest); then the server must stop cleanly, endless guests or not.
fn on_winch_code(flags: &[&str], check: impl FnOnce(&mut Server)) {
    let cache = tempfile::tempdir().unwrap();
    let args: Vec<&str> = ["-v"]
        .iter()
        .chain(flags)
        .chain(&[guest::HTTP_PY])
        .copied()
        .collect();
    let mut server = Server::start_with_env(&[("XDG_CACHE_HOME", cache.path())], "serve", &args);
    assert!(server.stderr().contains(PROVISIONAL), "{}", server.stderr());
    check(&mut server);
    assert!(
        !server.stderr().contains(COMPLETED),
        "Cranelift's code took over before the check was done: it did not test Winch's\n{}",
        server.stderr()
    );
    assert_eq!(server.stop("TERM").code(), Some(0));
}

#[test]
fn a_spinner_shows_while_compiling_on_a_terminal_and_nothing_otherwise() {
    let cache = tempfile::tempdir().unwrap();
    // Not a terminal: a cold compile prints nothing of its own.
    cached_in(cache.path())
        .args([guest::HELLO_PY])
        .run()
        .success()
        .stderr_is_empty();
    // A terminal (util-linux `script` gives the command a pseudo-terminal): the spinner names
    // the file and counts the time, then clears itself.
    let fresh = tempfile::tempdir().unwrap();
    let command = format!(
        "{} --no-cache {}",
        env!("CARGO_BIN_EXE_worldhost"),
        guest::HELLO_PY
    );
    let out = crate::Invocation::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("XDG_CACHE_HOME", fresh.path())
        .run();
    out.success()
        .stdout_has("Compiling hello-py.wasm (")
        .stdout_has("Hello from Python");
}

#[test]
fn a_python_wasi_0_3_command_runs() {
    let cache = tempfile::tempdir().unwrap();
    cached_in(cache.path())
        .args(["inspect", guest::COMMAND_P3_PY])
        .run()
        .success()
        .stdout_has("it exports `wasi:cli/run@0.3.0` (WASI 0.3)");
    cached_in(cache.path())
        .args([
            "run",
            "--env",
            "GREETING=hi",
            guest::COMMAND_P3_PY,
            "a",
            "b c",
        ])
        .run()
        .success()
        .stdout("Hello from Python on WASI 0.3! args: ['a', 'b c']\nGREETING=hi\n");
    // As with the 0.2 guest, componentize-py turns `sys.exit(3)` into `run`'s error result,
    // and wasmtime's exit status for that: 1.
    cached_in(cache.path())
        .args([guest::COMMAND_P3_PY, "exit=3"])
        .run()
        .code(1)
        .stdout_has("args: ['exit=3']");
}

#[test]
fn a_python_wasi_0_3_service_is_served_and_bounded_by_w_timeout() {
    let cache = tempfile::tempdir().unwrap();
    let mut server = Server::start_with_env(
        &[("XDG_CACHE_HOME", cache.path())],
        "run",
        &["-v", "-W", "timeout=2s", guest::SERVICE_P3_PY],
    );
    // Chosen by its world, and said so.
    assert!(
        server
            .stderr()
            .contains("it exports `wasi:http/handler@0.3.0` (WASI 0.3)"),
        "{}",
        server.stderr()
    );
    assert_eq!(
        get(&server.url("/py?x=1")),
        (
            200,
            "Hello from Python on WASI 0.3! You asked for /py?x=1\n".into()
        )
    );
    // The request body's stream is handed to the response as it is.
    assert_echoes(&server, "/echo", &"through a Python stream ".repeat(40_000));
    // A guest computing forever is stopped at -W timeout, and the next request is served.
    assert_eq!(get(&server.url("/spin")).0, 504);
    server.wait_for("spinning");
    assert_eq!(get(&server.url("/after")).0, 200);
    assert_eq!(server.stop("TERM").code(), Some(0));
}
