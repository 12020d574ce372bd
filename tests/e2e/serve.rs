//! The http-proxy handler over a real socket on 127.0.0.1: responses, big bodies both ways,
//! faults that stay inside their request, deadlines, concurrency, outgoing requests with the
//! allow-list, graceful shutdown, and bad input.

use crate::server::{Server, client, get};
use crate::worldhost;
use std::io::{Read, Write};
use std::net::TcpListener;
use worldhost_test_artifacts as guest;

#[test]
pub(crate) fn http_hello() {
    let server = Server::start(&[guest::HTTP_HELLO]);
    let response = client().get(&server.url("/")).call().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-hello"], "worldhost");
    let (status, body) = get(&server.url("/any/path"));
    assert_eq!((status, body.as_str()), (200, "Hello, world!\n"));
}

#[test]
pub(crate) fn http_routes() {
    // Chosen by its world: `run`, not `serve` (which names the handler).
    let mut server = Server::start_with_env(&[], "run", &["-v", guest::HTTP_ROUTES]);
    assert!(
        server
            .stderr()
            .contains("reason=it exports `wasi:http/incoming-handler@0.2.")
            && server.stderr().contains("(WASI 0.2) (claim strength 50)"),
        "{}",
        server.stderr()
    );
    assert_eq!(
        get(&server.url("/status/418")),
        (418, "status 418\n".into())
    );
    assert_eq!(server.stop("TERM").code(), Some(0));
}

#[test]
fn run_chooses_the_proxy_handler_by_itself() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_worldhost"))
        .args(["run", "--addr", "127.0.0.1:0", guest::HTTP_HELLO])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.starts_with("Serving HTTP on http://127.0.0.1:"),
        "{line}"
    );
}

#[test]
fn echo_of_method_path_query_headers_and_body() {
    let server = Server::start(&[guest::HTTP_ROUTES]);
    let mut response = client()
        .post(&server.url("/echo?q=1&r=two"))
        .header("x-first", "one")
        .header("x-second", "two")
        .send("the body")
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.body_mut().read_to_string().unwrap(),
        "POST /echo?q=1&r=two\nx-first: one\nx-second: two\n\nthe body"
    );
}

#[test]
fn a_10_mb_response_streamed_in_chunks_arrives_whole() {
    let server = Server::start(&[guest::HTTP_ROUTES]);
    let mut response = client().get(&server.url("/big?mb=10")).call().unwrap();
    let body = response
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap();
    assert_eq!(body.len(), 10 << 20);
    assert!(
        body.iter()
            .enumerate()
            .all(|(i, b)| usize::from(*b) == (i % 4096) % 251)
    );
}

#[test]
fn a_10_mb_request_body_is_read_whole() {
    let server = Server::start(&[guest::HTTP_ROUTES]);
    let body: Vec<u8> = (0..10u32 << 20).map(|i| (i % 253) as u8).collect();
    let sum = body.iter().fold(0u32, |s, b| s.wrapping_add(u32::from(*b)));
    let mut response = client()
        .post(&server.url("/count"))
        .send(&body[..])
        .unwrap();
    assert_eq!(
        response.body_mut().read_to_string().unwrap(),
        format!("{} bytes, sum {sum}\n", 10 << 20)
    );
}

#[test]
fn a_body_over_the_bound_is_refused() {
    let server = Server::start(&["--max-request-body-size", "1000", guest::HTTP_ROUTES]);
    let response = client()
        .post(&server.url("/count"))
        .send(&[0u8; 2000][..])
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(get(&server.url("/count")).0, 200);
}

#[test]
fn a_trap_is_a_500_for_that_request_only() {
    let mut server = Server::start(&[guest::HTTP_ROUTES]);
    assert_eq!(get(&server.url("/trap")).0, 500);
    assert_eq!(get(&server.url("/")), (200, "Hello, world!\n".into()));
    server.wait_for("`http_routes.wasm` trapped: wasm `unreachable`");
}

#[test]
fn a_trap_after_the_headers_cuts_the_response_off() {
    let mut server = Server::start(&[guest::HTTP_ROUTES]);
    // The response must not end cleanly: either the connection closes before the headers are
    // flushed, or the body is cut off; never a complete 200.
    let result = client()
        .get(&server.url("/trap-after-headers"))
        .call()
        .and_then(|mut response| response.body_mut().read_to_string());
    assert!(result.is_err(), "{result:?}");
    assert_eq!(get(&server.url("/")).0, 200);
    server.wait_for("trapped");
}

#[test]
fn no_response_is_a_500() {
    let mut server = Server::start(&[guest::HTTP_ROUTES]);
    assert_eq!(get(&server.url("/no-response")).0, 500);
    server.wait_for("returned without setting a response");
}

#[test]
fn a_deadline_overrun_is_a_504_and_others_are_served() {
    let mut server = Server::start(&["-W", "timeout=500ms", guest::HTTP_ROUTES]);
    let url = server.url("/spin");
    let spinning = std::thread::spawn(move || get(&url).0);
    // The spinning guest runs before the other request goes: the two overlap.
    server.wait_for("spinning");
    assert_eq!(
        get(&server.url("/slow?ms=100")),
        (200, "slept 100 ms\n".into())
    );
    assert_eq!(spinning.join().unwrap(), 504);
    server.wait_for("ran past its time limit");
}

/// The line a server logs (with `-v`) when it starts from code compiled by Winch.
pub(crate) const PROVISIONAL: &str = "serving from code compiled by Winch";
/// The line it logs when Cranelift's code takes over.
pub(crate) const COMPLETED: &str = "serving from the code compiled by Cranelift";

/// Sends eight requests to `/spin` (more than the server has worker threads: the test machine
/// has 2 cores), each computing without a pause, then checks that other requests are still
/// answered, with `healthy`.
pub(crate) fn endless_requests_leave_room_for(server: &mut Server, healthy: &str) {
    let spinning: Vec<std::net::TcpStream> = (0..8)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
            stream
                .write_all(b"GET /spin HTTP/1.1\r\nhost: x\r\n\r\n")
                .unwrap();
            stream
        })
        .collect();
    // Before the healthy requests go, spinning guests run on every worker of the server's
    // runtime (one per core): each says so as it starts. Under a loaded machine the other
    // spinning requests may still be starting; they are not needed for the test to mean
    // something.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    for _ in 0..workers {
        server.wait_for("spinning");
    }
    for _ in 0..3 {
        assert_eq!(get(&server.url(healthy)).0, 200);
    }
    drop(spinning);
}

#[test]
fn guests_that_never_end_do_not_starve_other_requests() {
    // No `-W timeout`: the endless guests yield their workers at the epoch ticks. This is
    // Cranelift's code; the Python test
    // `endless_guests_do_not_starve_others_while_the_full_code_compiles` covers Winch's, which
    // a cold server starts from.
    let cache = tempfile::tempdir().unwrap();
    let mut server = Server::start_with_env(
        &[("XDG_CACHE_HOME", cache.path())],
        "serve",
        &["-v", guest::HTTP_ROUTES],
    );
    server.wait_for(COMPLETED);
    endless_requests_leave_room_for(&mut server, "/status/200");
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "the Winch start is on x86_64 only"
)]
fn a_cold_start_serves_at_once_and_the_next_starts_from_the_full_code() {
    let cache = tempfile::tempdir().unwrap();
    let start = || {
        Server::start_with_env(
            &[("XDG_CACHE_HOME", cache.path())],
            "serve",
            &["-v", guest::HTTP_HELLO],
        )
    };
    // Cold: compiled by Winch, served, then Cranelift's code takes over.
    let mut cold = start();
    assert!(cold.stderr().contains(PROVISIONAL), "{}", cold.stderr());
    assert_eq!(get(&cold.url("/")).0, 200);
    cold.wait_for(COMPLETED);
    assert_eq!(get(&cold.url("/")).0, 200);
    assert_eq!(cold.stop("TERM").code(), Some(0));
    // Both codes are cached; the next start takes the full one and compiles nothing.
    assert_eq!(crate::precompiled::entries(cache.path()).len(), 2);
    let mut warm = start();
    assert_eq!(get(&warm.url("/")).0, 200);
    assert_eq!(warm.stop("TERM").code(), Some(0));
    let log = warm.stderr();
    assert!(
        !log.contains(PROVISIONAL) && !log.contains(COMPLETED),
        "{log}"
    );
    assert_eq!(crate::precompiled::entries(cache.path()).len(), 2);
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "the Winch start is on x86_64 only"
)]
pub(crate) fn http_tail_call() {
    // Winch cannot compile tail calls: a cold server compiles the guest with Cranelift at once,
    // serves from that code, and caches only it.
    let cache = tempfile::tempdir().unwrap();
    let mut server = Server::start_with_env(
        &[("XDG_CACHE_HOME", cache.path())],
        "serve",
        &["-v", guest::HTTP_TAIL_CALL],
    );
    assert_eq!(
        get(&server.url("/abc")),
        (200, "/abc has an even length\n".into())
    );
    assert_eq!(server.stop("TERM").code(), Some(0));
    let log = server.stderr();
    assert!(
        log.contains("for the start engine") && log.contains("tail call"),
        "{log}"
    );
    assert!(
        !log.contains(PROVISIONAL) && !log.contains(COMPLETED),
        "{log}"
    );
    assert_eq!(crate::precompiled::entries(cache.path()).len(), 1);
}

#[test]
fn a_guest_that_waits_past_the_deadline_is_a_504_too() {
    // Sleeping runs no wasm, so the epoch alone would never stop it.
    let mut server = Server::start(&["-W", "timeout=500ms", guest::HTTP_ROUTES]);
    let started = std::time::Instant::now();
    assert_eq!(get(&server.url("/slow?ms=60000")).0, 504);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    server.wait_for("ran past its time limit");
    assert_eq!(get(&server.url("/status/200")).0, 200);
}

#[test]
fn two_hundred_concurrent_requests_are_all_answered() {
    let server = Server::start(&[guest::HTTP_ROUTES]);
    let threads: Vec<_> = (0..200)
        .map(|i| {
            let url = server.url(&format!("/echo?n={i}"));
            std::thread::spawn(move || (i, get(&url)))
        })
        .collect();
    for thread in threads {
        let (i, (status, body)) = thread.join().unwrap();
        assert_eq!(status, 200);
        assert_eq!(body, format!("GET /echo?n={i}\n\n"));
    }
}

/// A one-request HTTP server on 127.0.0.1 for the guest to call; returns its port.
pub(crate) fn upstream(answer: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(1) {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
            stream.write_all(reply.as_bytes()).unwrap();
        }
    });
    port
}

#[test]
fn outgoing_requests_go_to_allowed_hosts_only() {
    let port = upstream("from upstream");
    let allowed = format!("127.0.0.1:{port}");
    let server = Server::start(&["--allow-outgoing", &allowed, guest::HTTP_ROUTES]);
    let fetch = server.url(&format!("/fetch?url=http://127.0.0.1:{port}/x"));
    assert_eq!(get(&fetch), (200, "upstream 200: from upstream".into()));
    // Another port of the same host is not on the list.
    let denied = server.url(&format!("/fetch?url=http://127.0.0.1:{}/x", port + 1));
    let (status, body) = get(&denied);
    assert_eq!(status, 502);
    assert!(body.contains("HttpRequestDenied"), "{body}");
}

#[test]
fn an_allowed_host_without_a_port_means_its_schemes_port_and_star_any() {
    let port = upstream("from upstream");
    let fetch = format!("/fetch?url=http://127.0.0.1:{port}/x");
    // `127.0.0.1` alone allows port 80 only, as in Spin.
    let server = Server::start(&["--allow-outgoing", "127.0.0.1", guest::HTTP_ROUTES]);
    let (status, body) = get(&server.url(&fetch));
    assert_eq!(status, 502);
    assert!(body.contains("HttpRequestDenied"), "{body}");
    let server = Server::start(&["--allow-outgoing", "127.0.0.1:*", guest::HTTP_ROUTES]);
    assert_eq!(
        get(&server.url(&fetch)),
        (200, "upstream 200: from upstream".into())
    );
    crate::worldhost()
        .args([
            "serve",
            "--allow-outgoing",
            "127.0.0.1:http",
            guest::HTTP_ROUTES,
        ])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("`http` is not a port");
}

#[test]
fn an_outgoing_address_with_userinfo_is_denied() {
    let port = upstream("never");
    let allowed = format!("127.0.0.1:{port}");
    let server = Server::start(&["--allow-outgoing", &allowed, guest::HTTP_ROUTES]);
    for authority in [
        format!("x@127.0.0.1:{port}"),
        format!("evil.test:80@127.0.0.1:{port}"),
    ] {
        let (status, body) = get(&server.url(&format!("/fetch?url=http://{authority}/")));
        assert_eq!(status, 502, "{authority}: {body}");
        assert!(body.contains("HttpRequestDenied"), "{authority}: {body}");
    }
}

#[test]
fn a_guest_may_work_on_after_its_response_is_complete() {
    let mut server = Server::start(&[guest::HTTP_ROUTES]);
    assert_eq!(get(&server.url("/after")), (200, "done\n".into()));
    let head = client().head(&server.url("/after")).call().unwrap();
    assert_eq!(head.status(), 200);
    for _ in 0..2 {
        server.wait_for("the work after the response is done");
    }
}

#[test]
fn outgoing_requests_are_denied_by_default() {
    let port = upstream("never");
    let server = Server::start(&[guest::HTTP_ROUTES]);
    let (status, body) = get(&server.url(&format!("/fetch?url=http://127.0.0.1:{port}/")));
    assert_eq!(status, 502);
    assert!(body.contains("HttpRequestDenied"), "{body}");
}

#[test]
fn graceful_shutdown_lets_a_slow_request_finish() {
    let mut server = Server::start(&["-vv", guest::HTTP_ROUTES]);
    let url = server.url("/slow?ms=1500");
    let slow = std::thread::spawn(move || get(&url));
    server.wait_for("request received");
    assert_eq!(server.stop("INT").code(), Some(0));
    assert_eq!(slow.join().unwrap(), (200, "slept 1500 ms\n".into()));
}

#[test]
fn access_log_with_v() {
    let mut server = Server::start(&["-v", guest::HTTP_HELLO]);
    get(&server.url("/logged?x=1"));
    let line = server.wait_for("request");
    assert!(
        line.contains("GET") && line.contains("/logged") && line.contains("200"),
        "{line}"
    );
    // The query may hold a secret: no log line shows it.
    assert!(!line.contains("x=1"), "{line}");
}

#[test]
fn address_in_use() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    worldhost()
        .args(["serve", "--addr", &addr, guest::HTTP_HELLO])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("the address is in use")
        .stderr_has("--addr 127.0.0.1:0");
}

#[test]
fn unparsable_address() {
    worldhost()
        .args(["serve", "--addr", "localhost:port", guest::HTTP_HELLO])
        .run()
        .code(2)
        .stderr_has("invalid value 'localhost:port' for '--addr <ADDR>'");
}

#[test]
fn serve_on_a_component_without_the_incoming_handler() {
    worldhost()
        .args(["serve", "--addr", "127.0.0.1:0", guest::HELLO])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("`--handler http-proxy` cannot run")
        .stderr_has("it exports neither `wasi:http/incoming-handler` (WASI 0.2) nor `wasi:http/handler` (0.3)")
        .stderr_has("`wasi:cli/run@0.2.");
}

#[test]
fn env_and_dir_take_effect_without_s_cli() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("page.txt"), "from a granted dir\n").unwrap();
    let grant = format!("{}::/site::ro", dir.path().display());
    let server = Server::start(&["--env", "GREETING=hi", "--dir", &grant, guest::HTTP_ROUTES]);
    assert_eq!(
        get(&server.url("/env?name=GREETING")),
        (200, "GREETING=hi\n".into())
    );
    assert_eq!(
        get(&server.url("/env?name=HOME")),
        (200, "HOME=(unset)\n".into())
    );
    assert_eq!(
        get(&server.url("/file?path=/site/page.txt")),
        (200, "from a granted dir\n".into())
    );
    // Nothing outside the grant.
    assert_eq!(get(&server.url("/file?path=/etc/hostname")).0, 404);
}

#[test]
fn s_cli_is_accepted_as_in_wasmtime() {
    let server = Server::start(&["-S", "cli", guest::HTTP_HELLO]);
    assert_eq!(get(&server.url("/")).0, 200);
}

#[test]
fn a_request_past_max_memory_size_fails_alone() {
    let mut server = Server::start(&["-W", "max-memory-size=8388608", guest::HTTP_ROUTES]);
    assert_eq!(get(&server.url("/alloc?mb=32")).0, 500);
    assert_eq!(
        get(&server.url("/alloc?mb=1")),
        (200, "holding 1 MiB\n".into())
    );
    server.wait_for("past `-W max-memory-size=8388608`");
}

#[test]
fn inspect_and_help_know_the_proxy() {
    worldhost()
        .args(["inspect", guest::HTTP_HELLO])
        .run()
        .success()
        .stdout_has("handler    http-proxy: it exports `wasi:http/incoming-handler@0.2.");
    worldhost()
        .args(["serve", "--help"])
        .run()
        .success()
        .stdout_has("HTTP proxy options:")
        .stdout_has("--allow-outgoing <HOST[:PORT]>")
        .stdout_has("--addr <ADDR>")
        .stdout_has("--tls-cert <PEM>");
}

#[test]
fn a_proxy_reuses_instances_when_asked() {
    // A 0.2 proxy gets a fresh instance per request (as in wasmtime serve) unless
    // `--max-instance-reuse-count` says more; then one instance answers that many.
    let ids = |server: &Server| -> Vec<String> {
        (0..4)
            .map(|_| get(&server.url("/env?name=INSTANCE_ID")).1)
            .collect()
    };
    let fresh = Server::start(&[guest::HTTP_ROUTES]);
    assert_eq!(
        ids(&fresh),
        [
            "INSTANCE_ID=0\n",
            "INSTANCE_ID=1\n",
            "INSTANCE_ID=2\n",
            "INSTANCE_ID=3\n"
        ]
    );
    let reused = Server::start(&["--max-instance-reuse-count", "3", guest::HTTP_ROUTES]);
    assert_eq!(
        ids(&reused),
        [
            "INSTANCE_ID=0\n",
            "INSTANCE_ID=0\n",
            "INSTANCE_ID=0\n",
            "INSTANCE_ID=1\n"
        ]
    );
}

#[test]
fn every_pooling_key_of_wasmtime_applies_under_serve() {
    // A cache of its own: the refusal must not come from code cached by another test.
    let cache = tempfile::tempdir().unwrap();
    let env = [("XDG_CACHE_HOME", cache.path())];
    let key = |max: &str| format!("pooling-max-memories-per-component={max}");
    // One memory allowed, the guest's one: served.
    let mut server = Server::start_with_env(&env, "serve", &["-O", &key("1"), guest::HTTP_HELLO]);
    assert_eq!(get(&server.url("/")), (200, "Hello, world!\n".into()));
    server.stop("TERM");
    // None allowed: refused before listening, as `wasmtime serve` refuses it (the key was
    // dropped once, and the server served). Under `timeout`, so that a server that starts
    // anyway fails the test (124) instead of hanging it.
    let refused = crate::Invocation::new("timeout")
        .env("XDG_CACHE_HOME", cache.path())
        .args([
            "20",
            env!("CARGO_BIN_EXE_worldhost"),
            "serve",
            "--addr",
            "127.0.0.1:0",
        ])
        .args(["-O", &key("0"), guest::HTTP_HELLO])
        .run();
    refused
        .code(1)
        .one_paragraph_error()
        .stderr_has("exceeds the configured maximum of 0");
}
