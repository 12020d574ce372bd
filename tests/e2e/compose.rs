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
}
