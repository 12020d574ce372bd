//! Composition at load time: `--middleware` in front of an app (the page's second tutorial,
//! HTTP Auth Middleware), `--plug` filling imports, and `worldhost compose` writing the result.

use crate::server::{Server, client, get};
use crate::worldhost;
use worldhost_test_artifacts as guest;

/// GET `url` with `authorization: Bearer TOKEN`: status and body.
fn get_with_token(url: &str, token: &str) -> (u16, String) {
    let mut response = client()
        .get(url)
        .header("authorization", &format!("Bearer {token}"))
        .call()
        .expect("a response");
    let body = response.body_mut().read_to_string().expect("a whole body");
    (response.status().as_u16(), body)
}

/// The tutorial's answers: 401 from the middleware without the token (or with another), the
/// app's greeting with it.
fn assert_guarded(server: &Server) {
    assert_eq!(get(&server.url("/")), (401, "unauthorized\n".into()));
    assert_eq!(
        get_with_token(&server.url("/"), "guess"),
        (401, "unauthorized\n".into())
    );
    assert_eq!(
        get_with_token(&server.url("/"), "open-sesame"),
        (200, "Hello, world!\n".into())
    );
}

#[test]
pub(crate) fn http_auth() {
    // The middleware in front of the app, composed as the server loads it.
    let server = Server::start(&["--middleware", guest::HTTP_AUTH, guest::HTTP_HELLO]);
    assert_guarded(&server);
    // Twice: the outer one answers first, the inner one sees only what the outer let through.
    let twice = Server::start(&[
        "--middleware",
        guest::HTTP_AUTH,
        "--middleware",
        guest::HTTP_AUTH,
        guest::HTTP_HELLO,
    ]);
    assert_guarded(&twice);
}

#[test]
fn compose_writes_a_component_that_serves_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("guarded.wasm");
    let out = out.to_str().unwrap();
    worldhost()
        .args([
            "compose",
            "--middleware",
            guest::HTTP_AUTH,
            guest::HTTP_HELLO,
            "-o",
            out,
        ])
        .run()
        .success();
    worldhost()
        .args(["inspect", out])
        .run()
        .success()
        .stdout_has("handler    http-proxy: it exports `wasi:http/incoming-handler@0.2.12`");
    let server = Server::start(&[out]);
    assert_guarded(&server);
}

#[test]
pub(crate) fn host_plug() {
    // `worldhost:test/host`, which no runner provides, filled by the plug's export.
    worldhost()
        .args(["run", "--plug", guest::HOST_PLUG, "--invoke", "call-host()"])
        .args([guest::INVOKE_IMPORT])
        .run()
        .success()
        .stdout("\"Hello from a plug!\"\n");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plugged.wasm");
    let out = out.to_str().unwrap();
    worldhost()
        .args([
            "compose",
            "--plug",
            guest::HOST_PLUG,
            guest::INVOKE_IMPORT,
            "-o",
            out,
        ])
        .run()
        .success();
    worldhost()
        .args(["run", "--invoke", "call-host()", out])
        .run()
        .success()
        .stdout("\"Hello from a plug!\"\n");
}

#[test]
fn pieces_that_do_not_fit_are_refused_by_name() {
    // A plug that fills nothing.
    worldhost()
        .args(["run", "--plug", guest::HTTP_HELLO, "--invoke", "no-host()"])
        .args([guest::INVOKE_IMPORT])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("`--plug ")
        .stderr_has("fills no import of");
    // A component that does not forward is not a middleware.
    worldhost()
        .args([
            "serve",
            "--middleware",
            guest::HTTP_HELLO,
            guest::HTTP_HELLO,
        ])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("is not a middleware: it imports none of the interfaces it exports");
    // An app that does not export what the middleware forwards to.
    worldhost()
        .args(["serve", "--middleware", guest::HTTP_AUTH, guest::HELLO])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("exports no `wasi:http/incoming-handler@0.2.12`, which the middleware");
    // Nothing to compose, and a missing piece.
    worldhost()
        .args(["compose", guest::HTTP_HELLO, "-o", "/nonexistent/x.wasm"])
        .run()
        .code(2)
        .stderr_has("nothing to compose");
    worldhost()
        .args([
            "run",
            "--plug",
            "/nonexistent/plug.wasm",
            guest::INVOKE_IMPORT,
        ])
        .run()
        .code(1)
        .stderr_has("/nonexistent/plug.wasm");
    // Machine code is no piece, `--allow-precompiled` or not; nor is a core module.
    let dir = tempfile::tempdir().unwrap();
    let artifact = dir.path().join("plug.cwasm");
    let artifact = artifact.to_str().unwrap();
    worldhost()
        .args(["compile", guest::HOST_PLUG, "-o", artifact])
        .run()
        .success();
    for allow in [&[][..], &["--allow-precompiled"][..]] {
        worldhost()
            .args(["run", "--plug", artifact, "--invoke", "call-host()"])
            .args(allow)
            .args([guest::INVOKE_IMPORT])
            .run()
            .code(1)
            .one_paragraph_error()
            .stderr_has("plug.cwasm");
    }
    worldhost()
        .args(["run", "--plug", guest::EXIT_CODE_P1, guest::INVOKE_IMPORT])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("is a core module; only components compose");
}

#[test]
pub(crate) fn http_deny() {
    // The order of `--middleware` is the order a request meets them: the first is outermost.
    let auth_first = Server::start(&[
        "--middleware",
        guest::HTTP_AUTH,
        "--middleware",
        guest::HTTP_DENY,
        guest::HTTP_HELLO,
    ]);
    let deny_first = Server::start(&[
        "--middleware",
        guest::HTTP_DENY,
        "--middleware",
        guest::HTTP_AUTH,
        guest::HTTP_HELLO,
    ]);
    assert_eq!(
        get(&auth_first.url("/admin")),
        (401, "unauthorized\n".into())
    );
    assert_eq!(get(&deny_first.url("/admin")), (403, "forbidden\n".into()));
    for server in [&auth_first, &deny_first] {
        assert_eq!(
            get_with_token(&server.url("/admin"), "open-sesame"),
            (403, "forbidden\n".into())
        );
        assert_eq!(
            get_with_token(&server.url("/"), "open-sesame"),
            (200, "Hello, world!\n".into())
        );
    }
}

#[test]
pub(crate) fn p3_auth() {
    // A WASI 0.3 middleware (`wasi:http/middleware`) in front of a 0.3 service, twice.
    let server = Server::start(&[
        "--middleware",
        guest::P3_AUTH,
        "--middleware",
        guest::P3_AUTH,
        guest::P3_SERVICE,
    ]);
    assert_eq!(get(&server.url("/")), (401, "unauthorized\n".into()));
    // Fifty requests at once through the chain, each answered by the service.
    let url = server.url("/slow?ms=50");
    let answers: Vec<(u16, String)> = (0..50)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || get_with_token(&url, "open-sesame"))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let served = answers.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(served, 50, "{answers:?}");
    // Alone, it is named for what it is, instead of failing to link.
    worldhost()
        .args(["serve", guest::P3_AUTH])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("it is a middleware: it imports and exports `wasi:http/handler@0.3.0`");
    worldhost()
        .args(["inspect", guest::P3_AUTH])
        .run()
        .success()
        .stdout_has("http-proxy   no: it is a middleware");
    // A 0.2 middleware in front of a 0.3 service: both versions are named.
    worldhost()
        .args(["serve", "--middleware", guest::HTTP_AUTH, guest::P3_SERVICE])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("exports no `wasi:http/incoming-handler@0.2.12`")
        .stderr_has("it exports `wasi:http/handler@0.3.0`");
}

#[test]
pub(crate) fn host_misfit() {
    // The right interface, another type: refused with both named.
    worldhost()
        .args(["run", "--plug", guest::HOST_MISFIT, "--invoke", "no-host()"])
        .args([guest::INVOKE_IMPORT])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("fills no import: its `worldhost:test/host@0.1.0` does not fit");
}

#[test]
fn a_plug_serves_the_repl_too() {
    worldhost()
        .args(["repl", "--plug", guest::HOST_PLUG, guest::INVOKE_IMPORT])
        .stdin("call-host()\n")
        .run()
        .success()
        .stdout_has("\"Hello from a plug!\"");
}

#[test]
fn watch_reloads_when_a_middleware_changes() {
    let dir = tempfile::tempdir().unwrap();
    let middleware = dir.path().join("mw.wasm");
    std::fs::copy(guest::HTTP_DENY, &middleware).unwrap();
    let mut server = Server::start(&[
        "--watch",
        "--middleware",
        middleware.to_str().unwrap(),
        guest::HTTP_HELLO,
    ]);
    assert_eq!(get(&server.url("/")), (200, "Hello, world!\n".into()));
    let next = dir.path().join("mw.next");
    std::fs::copy(guest::HTTP_AUTH, &next).unwrap();
    std::fs::rename(&next, &middleware).unwrap();
    server.wait_for("--watch: reloaded");
    assert_eq!(get(&server.url("/")), (401, "unauthorized\n".into()));
}

#[test]
fn a_composition_is_kept_in_the_cache_by_its_inputs_and_their_order() {
    let cache = tempfile::tempdir().unwrap();
    let inspect = |pieces: &[&str]| {
        let out = worldhost()
            .env("XDG_CACHE_HOME", cache.path())
            .args(["-v", "inspect"])
            .args(pieces)
            .args([guest::HTTP_HELLO])
            .run();
        out.success();
        out.stderr
    };
    let order = [
        "--middleware",
        guest::HTTP_AUTH,
        "--middleware",
        guest::HTTP_DENY,
    ];
    let reversed = [
        "--middleware",
        guest::HTTP_DENY,
        "--middleware",
        guest::HTTP_AUTH,
    ];
    let first = inspect(&order);
    assert!(
        first.contains("composed") && !first.contains("from the cache"),
        "{first}"
    );
    let again = inspect(&order);
    assert!(
        again.contains("composition taken from the cache"),
        "{again}"
    );
    // Another order is another composition.
    let other = inspect(&reversed);
    assert!(!other.contains("from the cache"), "{other}");
    // Without the cache, composed every time.
    let uncached = worldhost()
        .env("XDG_CACHE_HOME", cache.path())
        .args(["-v", "inspect", "--no-cache"])
        .args(order)
        .args([guest::HTTP_HELLO])
        .run();
    uncached.success();
    let uncached = uncached.stderr;
    assert!(!uncached.contains("from the cache"), "{uncached}");
}

#[test]
pub(crate) fn http_hello_024() {
    // A middleware built against WASI 0.2.12 in front of an app built against 0.2.4: one track.
    let server = Server::start(&["--middleware", guest::HTTP_AUTH, guest::HTTP_HELLO_024]);
    assert_eq!(get(&server.url("/")), (401, "unauthorized\n".into()));
    assert_eq!(
        get_with_token(&server.url("/"), "open-sesame"),
        (200, "Hello from WASI 0.2.4!\n".into())
    );
}
