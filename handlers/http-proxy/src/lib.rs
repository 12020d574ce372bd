//! Serves `wasi:http/proxy` components over HTTP/1.1, one fresh instance per request, as
//! `wasmtime serve` does: on tokio and hyper, with wasmtime-wasi-http's request and response
//! types. Faults stay inside their request.

mod args;
mod body;
mod host;
mod io;
mod listen;
mod output;
mod pool;
mod request;
mod server;
mod start;

#[doc(hidden)]
pub mod fuzzing;

use args::HttpProxyArgs;
use clap::{Args as _, FromArgMatches as _};
use std::process::ExitCode;
use worldhost_core::{
    Asked, Claim, EnginePlan, Handler, Registration, RunContext, Settings, World, claim_export,
};

/// The interface a proxy exports.
const INCOMING_HANDLER: &str = "wasi:http/incoming-handler";

/// The `http-proxy` handler.
pub struct HttpProxyHandler;

inventory::submit! { Registration(&HttpProxyHandler) }

impl Handler for HttpProxyHandler {
    fn name(&self) -> &'static str {
        "http-proxy"
    }

    fn summary(&self) -> &'static str {
        "serves wasi:http/proxy components over HTTP, a fresh instance per request (like `wasmtime serve`)"
    }

    fn looks_for(&self) -> &'static str {
        "an export of `wasi:http/incoming-handler`"
    }

    fn claim(&self, world: &World, _asked: &Asked<'_>) -> Claim {
        claim_export(world, INCOMING_HANDLER, &["0.2"])
    }

    fn subcommand(&self) -> Option<(&'static str, &'static str)> {
        Some((
            "serve",
            "Serve a wasi:http/proxy component over HTTP (`run --handler http-proxy`)",
        ))
    }

    fn augment_args(&self, cmd: clap::Command) -> clap::Command {
        HttpProxyArgs::augment_args(cmd)
    }

    fn engine(&self, base: &wasmtime::Config, settings: &Settings) -> EnginePlan {
        host::engine(base, settings)
    }

    fn takes_guest_args(&self) -> bool {
        false
    }

    fn run(&self, cx: RunContext<'_>) -> anyhow::Result<ExitCode> {
        let args = HttpProxyArgs::from_arg_matches(cx.matches)?;
        server::serve(cx, args)
    }
}
