//! Serves `wasi:http/proxy` (WASI 0.2) components over HTTP/1.1 and HTTP/2, in cleartext or
//! TLS, one fresh instance per request (`sequential`), and `wasi:http/service` (0.3)
//! components with instances reused across requests (`concurrent`), as `wasmtime serve` does:
//! on tokio and hyper, with wasmtime-wasi-http's request and response types. Faults stay inside
//! their request, or under reuse their instance. A request goes `serve` -> `listen` ->
//! `connection` -> `request` -> `runner` -> a path -> the guest, and back through `answer`.

// In layers: a module imports only modules of the layers above its own (checked by
// core/tests/modules.rs).
// Leaves: the flags, what stops a request, the bounds on waits, the answers, the sockets.
mod args;
mod output;
mod stop;
mod tls;
mod wait;
// Built on the leaves: the answers, bodies, bounded IO, the pool and the sockets.
mod answer;
mod body;
mod conn;
mod io;
mod pool;
mod sockets;
// The engine, then the two paths a request takes: a fresh instance, or reused instances.
mod concurrent;
mod engine;
mod sequential;
// The runner (the seam between the paths), then the server's state.
mod runner;
mod state;
// One request, then one connection.
mod request;
// One connection.
mod connection;
// The tasks: listening, reloads, the tiered start.
mod listen;
mod reload;
mod tiered;
// The entry.
mod serve;

#[doc(hidden)]
pub mod fuzzing;

use args::HttpProxyArgs;
use clap::Args as _;
use std::process::ExitCode;
use worldhost_core::{
    Asked, Claim, EnginePlan, Flags, Handler, Registration, RunContext, Settings, WasmKind, World,
    claim_export, export_at, export_version, flags_of,
};

/// The interface a WASI 0.2 proxy exports.
const INCOMING_HANDLER: &str = "wasi:http/incoming-handler";
/// The interface a WASI 0.3 service exports.
const HANDLER: &str = "wasi:http/handler";

/// What a world's `handle` takes and returns: the number of parameters and of results, and the
/// WIT, for the error.
struct Handle {
    params: usize,
    results: usize,
    wit: &'static str,
}

const P3_HANDLE: Handle = Handle {
    params: 1,
    results: 1,
    wit: "handle: async func(request: request) -> result<response, error-code>",
};

const P2_HANDLE: Handle = Handle {
    params: 2,
    results: 0,
    wit: "handle: func(request: incoming-request, response-out: response-outparam)",
};

/// Why the exported `interface` (at the `version` the claim took) cannot be served: no
/// `handle`, or one of another shape. Only the counts are compared (a toolchain may name the
/// resource types its own way): wasmtime checks the types when it instantiates, which fails
/// every request of a server that has started; this says it before listening. A world
/// sketched before compiling has no functions: nothing is said of it until the compiled world.
fn misshapen(world: &World, interface: &str, version: &str, handle: &Handle) -> Option<String> {
    let item = export_at(world, interface, &[version])?;
    if item.functions.is_empty() {
        return None;
    }
    match item.functions.iter().find(|f| f.name == "handle") {
        Some(f) if f.params.len() == handle.params && f.results.len() == handle.results => None,
        Some(f) => Some(format!(
            "its `{}` has `handle: {}`, where the world's is `{}`; rebuild it against that WIT",
            item.name,
            f.signature(),
            handle.wit
        )),
        None => Some(format!(
            "its `{}` has no `handle` function (the world's is `{}`)",
            item.name, handle.wit
        )),
    }
}

/// Whether the component is served as a WASI 0.3 `wasi:http/service`: it exports its handler,
/// and `-S p3=n` does not turn 0.3 off (a component that exports both worlds is then served
/// as 0.2).
fn serves_p3(world: &World, settings: &Settings) -> bool {
    let p3 = export_version(world, HANDLER, &["0.3"]).is_some();
    p3 && (settings.p3 || export_version(world, INCOMING_HANDLER, &["0.2"]).is_none())
}

/// Why a component that imports the handler interface it exports is not served alone: it is a
/// middleware, which forwards to the component it is put in front of.
fn middleware(world: &World) -> Option<String> {
    let forwards = |interface: &str| {
        let imported = (world.imports.iter()).any(|i| {
            i.interface
                .as_ref()
                .is_some_and(|n| n.unversioned() == interface)
        });
        imported.then(|| world.export_of(interface)).flatten()
    };
    let export = forwards(HANDLER).or_else(|| forwards(INCOMING_HANDLER))?;
    Some(format!(
        "it is a middleware: it imports and exports `{}`; serve it in front of an app with \
         `--middleware`",
        export.name
    ))
}

/// The `http-proxy` handler.
pub struct HttpProxyHandler;

inventory::submit! { Registration(&HttpProxyHandler) }

impl Handler for HttpProxyHandler {
    fn name(&self) -> &'static str {
        "http-proxy"
    }

    fn summary(&self) -> &'static str {
        "serves wasi:http/proxy (WASI 0.2) and wasi:http/service (0.3) components over HTTP (like `wasmtime serve`)"
    }

    fn looks_for(&self) -> &'static str {
        "an export of `wasi:http/incoming-handler` (WASI 0.2) or `wasi:http/handler` (0.3)"
    }

    fn claim(&self, world: &World, _asked: &Asked<'_>) -> Claim {
        if let Some(middleware) = middleware(world) {
            return Claim::No(middleware);
        }
        let p3 = claim_export(world, HANDLER, &["0.3"]);
        if matches!(p3, Claim::Yes(_)) {
            return misshapen(world, HANDLER, "0.3", &P3_HANDLE).map_or(p3, Claim::No);
        }
        let p2 = match claim_export(world, INCOMING_HANDLER, &["0.2"]) {
            yes @ Claim::Yes(_) => {
                misshapen(world, INCOMING_HANDLER, "0.2", &P2_HANDLE).map_or(yes, Claim::No)
            }
            no => no,
        };
        let exported = |interface| world.export_of(interface).is_some();
        match (exported(HANDLER), exported(INCOMING_HANDLER)) {
            // Its 0.3 handler at a version this handler does not take says more.
            (true, false) => p3,
            (false, false) if world.kind == WasmKind::Component => Claim::No(format!(
                "it exports neither `{INCOMING_HANDLER}` (WASI 0.2) nor `{HANDLER}` (0.3)"
            )),
            _ => p2,
        }
    }

    fn found(&self, world: &World) -> Option<String> {
        let p3 = export_version(world, HANDLER, &["0.3"]);
        let p2 = export_version(world, INCOMING_HANDLER, &["0.2"]);
        Some(match (p3, p2) {
            (Some(p3), Some(p2)) => format!(
                "it exports `{HANDLER}@{p3}` (WASI 0.3) and `{INCOMING_HANDLER}@{p2}` (0.2): it \
                 is served as 0.3, as wasmtime 48 serves it (`-S p3=n` serves it as 0.2)"
            ),
            (Some(p3), None) => format!("it exports `{HANDLER}@{p3}` (WASI 0.3)"),
            (None, Some(p2)) => format!("it exports `{INCOMING_HANDLER}@{p2}` (WASI 0.2)"),
            (None, None) => return None,
        })
    }

    fn subcommand(&self) -> Option<(&'static str, &'static str)> {
        Some((
            "serve",
            "Serve a wasi:http/proxy or wasi:http/service component over HTTP (`run --handler http-proxy`)",
        ))
    }

    fn augment_args(&self, cmd: clap::Command) -> clap::Command {
        HttpProxyArgs::augment_args(cmd)
    }

    fn parse_flags(&self, matches: &clap::ArgMatches) -> anyhow::Result<Option<Flags>> {
        flags_of::<HttpProxyArgs>(matches)
    }

    fn engine(&self, base: &wasmtime::Config, settings: &Settings) -> EnginePlan {
        engine::engine(base, settings)
    }

    fn compiles_concurrent(&self, _world: &World) -> bool {
        // Its artifact may be served reusing instances (`--max-instance-reuse-count`), which
        // wasmtime's dispatcher does in the store's event loop.
        true
    }

    fn takes_guest_args(&self) -> bool {
        false
    }

    fn run(&self, cx: RunContext<'_>) -> anyhow::Result<ExitCode> {
        let args = cx.flags.of::<HttpProxyArgs>()?.clone();
        serve::serve(cx, args)
    }
}
