//! End-to-end tests of the real `worldhost` binary on real components built from source in
//! tests/guests, and on tiny bad inputs in tests/e2e/data.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

// Each command guest, run through the command handler, against wasmtime's behaviour.
mod command;
// Every kind of bad input: one-paragraph error, exit 1 (usage errors 2), never a panic.
mod bad_input;
// `inspect`, `handlers`, `--help` and the shorthand.
mod cli;
// Composition: `--middleware`, `--plug`, `worldhost compose`.
mod compose;
// wasmtime's flags: option groups, `-S http`, config, keyvalue, profile, coredump, stdin.
mod flags;
// The invoke handler: WAVE in and out, lookup, errors.
mod invoke;
// Property test: random WAVE values through an identity export come back equal.
mod invoke_roundtrip;
// -W limits for the handlers beyond command: invoke, preview1, serve.
mod limits;
// `worldhost compile`, precompiled artifacts, and the compilation cache.
mod precompiled;
// Large components: Python guests built by componentize-py.
mod python;
// The preview1 handler: core modules built for wasm32-wasip1.
mod preview1;
// serve in production: TLS, HTTP/2, listeners, reloads.
mod production;
// WASI 0.3 worlds: a command and an HTTP service built with the wasip3 crate.
mod p3;
// worldhost repl: sessions on stdin and on a pseudo-terminal.
mod repl;
// The http-proxy handler over real sockets.
mod serve;
// Hostile HTTP clients: trickled headers, idle floods, garbage, disconnects.
mod hostile;
// The fixture for serve: a worldhost server on a free port.
mod server;
// Sandbox escapes: `..`, symlinks, host paths, sockets.
mod sandbox;
// OpenTelemetry against an OTLP receiver started by the test.
mod telemetry;
// Capabilities and limits: `--dir` (read-only too), `--env`, `-S`, `-W`.
mod settings;
// Trust, second pass: the host process out of reach, slow clients, secrets, watched paths.
mod trust;

pub(crate) use worldhost_test_artifacts::Invocation;

/// The binary under test.
fn worldhost() -> Invocation {
    Invocation::new(env!("CARGO_BIN_EXE_worldhost"))
}

/// A file in tests/e2e/data.
fn data(name: &str) -> String {
    format!("{}/../tests/e2e/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Every guest's test, by the guest's name.
mod tested {
    pub(crate) use crate::command::{
        alloc, echo_stdin, exit_code, hello, print_args, print_env, probe_export, read_file, spin,
        trap, write_file,
    };
    pub(crate) use crate::compose::{
        host_misfit, host_plug, http_auth, http_deny, http_hello_024, p3_auth,
    };
    pub(crate) use crate::flags::{fetch, http_config, read_config};
    pub(crate) use crate::invoke::{invoke_calc, invoke_import};
    pub(crate) use crate::p3::{p3_both, p3_command, p3_invoke, p3_service};
    pub(crate) use crate::sandbox::connect;
    pub(crate) use crate::serve::{http_hello, http_routes, http_tail_call};
}

// A guest without a test named after it does not compile.
macro_rules! assert_test_exists {
    ($name:ident) => {
        #[allow(unused_imports)]
        use self::tested::$name as _;
    };
}
worldhost_test_artifacts::foreach_guest!(assert_test_exists);
