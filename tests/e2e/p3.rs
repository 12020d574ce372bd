//! WASI 0.3 worlds: a command (tests/guests/p3-command) and an HTTP service (p3-service) built
//! with the wasip3 crate, whose every word goes through 0.3's interfaces. Output, exit codes,
//! and instance reuse are those wasmtime 48 gives them.

use crate::server::{Server, assert_echoes, client, connect, get, read_until_closed};
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
        .stdout_has("handler    command: it exports `wasi:cli/run@0.3.0` (WASI 0.3)");
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
        .stderr_has("of WASI 0.3, which is not linked here: `-S p3=n` (or");
    worldhost()
        .args(["inspect", guest::P3_BOTH])
        .run()
        .success()
        .stdout_has(
            "it exports `wasi:cli/run@0.3.0` (WASI 0.3), and `@0.2.0` too: it runs as WASI 0.3",
        );
}

/// Reads the instance number out of the p3-service guest's `/count` answer.
fn instance_of(answer: &str) -> String {
    answer
        .trim_end()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
pub(crate) fn p3_service() {
    // Chosen by its world, and said so.
    let mut server = Server::start_with_env(&[], "run", &["-v", guest::P3_SERVICE]);
    assert!(
        server
            .stderr()
            .contains("it exports `wasi:http/handler@0.3.0` (WASI 0.3)"),
        "{}",
        server.stderr()
    );
    assert_eq!(
        get(&server.url("/")),
        (200, "Hello from a WASI 0.3 service!\n".into())
    );
    // A streamed request body comes back whole.
    assert_echoes(
        &server,
        "/echo",
        &"streamed through WASI 0.3 ".repeat(40_000),
    );
    // A 10 MiB streamed response.
    let big = client()
        .get(&server.url("/big?mb=10"))
        .call()
        .unwrap()
        .into_body()
        .with_config()
        .limit(20 << 20)
        .read_to_vec()
        .unwrap();
    assert_eq!(big.len(), 10 << 20);
    assert!(big.iter().all(|&b| b == b'x'));
    assert_eq!(server.stop("TERM").code(), Some(0));
}

#[test]
fn p3_service_answers_in_one_write_when_it_can_and_streams_when_it_cannot() {
    use std::io::Read as _;
    use std::time::{Duration, Instant};
    let server = Server::start(&[guest::P3_SERVICE]);
    // The guest returns its response before it has finished the body's stream: a body that is
    // done a moment later goes out with its head, its length known (not chunked). One of a
    // few: on a loaded machine the guest's task may not get its turn in time.
    let lengths: Vec<Option<String>> = (0..20)
        .map(|_| {
            let response = client().get(&server.url("/")).call().unwrap();
            let length = response.headers().get("content-length");
            length.map(|v| v.to_str().unwrap().to_string())
        })
        .collect();
    assert!(
        lengths.iter().any(|l| l.as_deref() == Some("31")),
        "{lengths:?}"
    );
    // A body still being written streams: its head and first bytes come before its end.
    let started = Instant::now();
    let response = client().get(&server.url("/drip?ms=3000")).call().unwrap();
    assert!(response.headers().get("content-length").is_none());
    let mut body = response.into_body().into_reader();
    let mut first = [0; 6];
    body.read_exact(&mut first).unwrap();
    let early = started.elapsed();
    assert_eq!(&first, b"first\n");
    assert!(
        early < Duration::from_secs(2),
        "the first bytes took {early:?}"
    );
    let mut rest = String::new();
    body.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "last\n");
    assert!(started.elapsed() >= Duration::from_secs(3));
    // Trailers keep a body chunked, gathered or not (a known length would drop them).
    for _ in 0..10 {
        let answer = raw_get(&server, "/trailers");
        assert!(
            answer.contains("transfer-encoding: chunked\r\n")
                && answer.ends_with("\r\nchecked\n\r\n0\r\nx-check: ok\r\n\r\n"),
            "{answer:?}"
        );
    }
}

/// GET `path` over a connection of its own, with `connection: close`: the answer's bytes as
/// they came.
fn raw_get(server: &Server, path: &str) -> String {
    use std::io::Write as _;
    let mut socket = connect(server.addr);
    write!(
        socket,
        "GET {path} HTTP/1.1\r\nhost: x\r\nte: trailers\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    read_until_closed(&mut socket)
}

#[test]
fn p3_service_reuses_instances_as_wasmtime_serve_does() {
    let server = Server::start(&["--max-instance-reuse-count", "3", guest::P3_SERVICE]);
    let answers: Vec<String> = (0..4).map(|_| get(&server.url("/count")).1).collect();
    let first = instance_of(&answers[0]);
    assert_eq!(
        answers[..3],
        [1, 2, 3].map(|n| format!("request {n} of instance {first}\n")),
        "one instance takes three requests"
    );
    assert_eq!(
        answers[3],
        format!("request 1 of instance {}\n", instance_of(&answers[3]))
    );
    assert_ne!(
        instance_of(&answers[3]),
        first,
        "the fourth goes to a new instance"
    );
    // Past --idle-instance-timeout, a new instance.
    let server = Server::start(&["--idle-instance-timeout", "100ms", guest::P3_SERVICE]);
    let before = get(&server.url("/count")).1;
    std::thread::sleep(std::time::Duration::from_millis(500));
    let after = get(&server.url("/count")).1;
    assert_ne!(
        instance_of(&before),
        instance_of(&after),
        "{before} {after}"
    );
    assert!(after.starts_with("request 1 "), "{after}");
}

#[test]
fn p3_service_trap_fails_its_request_and_the_next_is_served() {
    let mut server = Server::start(&[guest::P3_SERVICE]);
    let before = get(&server.url("/count")).1;
    assert_eq!(get(&server.url("/trap")).0, 500);
    let after = get(&server.url("/count")).1;
    // The trapped instance was dropped: a fresh one answers.
    assert!(after.starts_with("request 1 "), "{after}");
    assert_ne!(instance_of(&before), instance_of(&after));
    server.wait_for("`p3_service.wasm` trapped: wasm `unreachable` instruction executed");
}

#[test]
fn p3_service_timeout_ends_a_computing_and_a_waiting_request() {
    let server = Server::start(&["-W", "timeout=300ms", guest::P3_SERVICE]);
    for route in ["/spin", "/sleep"] {
        let started = std::time::Instant::now();
        let (status, body) = get(&server.url(route));
        assert_eq!(
            (status, body.as_str()),
            (504, "the request ran past its time limit\n"),
            "{route}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{route}"
        );
        assert_eq!(get(&server.url("/")).0, 200, "served after {route}");
    }
}

#[test]
fn p3_service_outgoing_requests_go_to_allowed_hosts_only() {
    let port = crate::serve::upstream("from upstream");
    let url = format!("/fetch?url=http://127.0.0.1:{port}/x");
    let denied = Server::start(&[guest::P3_SERVICE]);
    let (status, body) = get(&denied.url(&url));
    assert_eq!(
        (status, body.as_str()),
        (502, "ErrorCode::HttpRequestDenied\n")
    );
    let allowed = format!("127.0.0.1:{port}");
    let server = Server::start(&["--allow-outgoing", &allowed, guest::P3_SERVICE]);
    assert_eq!(get(&server.url(&url)), (200, "200 from upstream".into()));
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

#[test]
fn p3_command_and_service_run_precompiled() {
    // An artifact records whether it was compiled with concurrency support (a 0.3 component's
    // is, a 0.2 one's is not); each loads into the engine it was made for.
    let dir = tempfile::tempdir().unwrap();
    for (component, name) in [(guest::P3_COMMAND, "p3.cwasm"), (guest::HELLO, "p2.cwasm")] {
        let out = dir.path().join(name).display().to_string();
        worldhost()
            .args(["compile", component, "-o", &out])
            .run()
            .success();
    }
    let artifact = |name: &str| dir.path().join(name).display().to_string();
    worldhost()
        .args(["run", "--allow-precompiled", &artifact("p3.cwasm")])
        .run()
        .success()
        .stdout("Hello from WASI 0.3!\n");
    worldhost()
        .args(["run", "--allow-precompiled", &artifact("p2.cwasm")])
        .run()
        .success()
        .stdout("Hello, world!\n");
    // Without the flag, machine code is refused, 0.3 or not.
    worldhost()
        .args(["run", &artifact("p3.cwasm")])
        .run()
        .code(1)
        .stderr_has("--allow-precompiled");
    let out = dir.path().join("service.cwasm").display().to_string();
    worldhost()
        .args(["compile", guest::P3_SERVICE, "-o", &out])
        .run()
        .success();
    let server = Server::start(&["--allow-precompiled", &out]);
    assert_eq!(
        get(&server.url("/")),
        (200, "Hello from a WASI 0.3 service!\n".into())
    );
}

#[test]
fn p3_repl_calls_async_exports_on_one_instance() {
    worldhost()
        .args(["repl", guest::P3_INVOKE])
        .stdin("slow-add(1, 2)\nlet g = greet(\"Ada\")\ng\nmul(6, 7)\n.reset\nslow-add(2, 3)\n")
        .run()
        .success()
        .stdout("3\n\"Hello, Ada!\"\n42\n5\n");
    worldhost()
        .args(["repl", guest::P3_INVOKE])
        .stdin("crash()\n")
        .run()
        .code(134)
        .stderr_has("trapped");
}

#[test]
fn a_javascript_wasi_0_3_service_is_served() {
    // componentize-qjs's output imports wasi:cli@0.2 for QuickJS's own runtime: given here by
    // default (wasmtime serve needs `-S cli` for it).
    let mut server = Server::start(&[guest::SERVICE_P3_JS]);
    assert_eq!(
        get(&server.url("/js?x=1")),
        (
            200,
            "Hello from JavaScript on WASI 0.3! You asked for /js?x=1\n".into()
        )
    );
    assert_echoes(
        &server,
        "/echo",
        &"through a JavaScript stream ".repeat(40_000),
    );
    // An exception thrown by the handler traps: a 500, and the next request is served.
    assert_eq!(get(&server.url("/throw")).0, 500);
    server.wait_for("thrown on purpose");
    assert_eq!(get(&server.url("/after")).0, 200);
    assert_eq!(server.stop("TERM").code(), Some(0));
}

#[test]
fn a_handler_export_of_the_wrong_shape_is_refused_before_listening() {
    // wasmtime serve 48 listens, and fails every request at instantiation ("failed to convert
    // function to given type").
    for subcommand in ["serve", "run"] {
        worldhost()
            .args([subcommand, &crate::data("p3-misshapen-handler.wat")])
            .run()
            .code(1)
            .stderr_has(
                "its `wasi:http/handler@0.3.0` has `handle: func()`, where the world's is \
                 `handle: async func(request: request) -> result<response, error-code>`",
            );
    }
}
