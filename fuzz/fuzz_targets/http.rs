//! The http-proxy handler's request path: the input as raw bytes from a client, on an
//! in-memory connection served by the same code as a real socket (hyper, the body limit, the
//! concurrency bound, wasmtime-wasi-http, the http-routes guest, the response). Any panic is
//! a bug, and so is a connection the server does not end within 60 s of the client closing
//! its side. WORLDHOST_FUZZ_COMPONENT names http_routes.wasm (scripts/fuzz sets it).
#![no_main]

use clap::FromArgMatches as _;
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;
use worldhost::SharedArgs;
use worldhost_core::{Asked, HandlerFlags, RunContext, RunRequest, prepare};
use worldhost_handler_http_proxy::fuzzing::Harness;

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let path = std::env::var_os("WORLDHOST_FUZZ_COMPONENT")
            .expect("WORLDHOST_FUZZ_COMPONENT names http_routes.wasm (scripts/fuzz sets it)");
        let argv = [
            "worldhost".into(),
            "serve".into(),
            "-W".into(),
            "timeout=1s".into(),
            "-W".into(),
            "max-memory-size=67108864".into(),
            "--max-request-body-size".into(),
            "1048576".into(),
            path.clone(),
        ];
        let matches = worldhost::command()
            .try_get_matches_from::<_, std::ffi::OsString>(argv)
            .expect("the flags parse");
        let (_, serve) = matches.subcommand().expect("serve");
        let settings = SharedArgs::from_arg_matches(serve)
            .and_then(|args| Ok(args.resolve().expect("the settings resolve")))
            .expect("the shared flags parse");
        let flags = HandlerFlags::parse(serve).expect("the handlers' flags parse");
        // Loaded as `serve` loads it: for the server's engine (its full code, not Winch's).
        let prepared = prepare(&RunRequest {
            path: Path::new(&path),
            settings: &settings,
            asked: Asked { handler: Some("http-proxy"), guest_args: false, flags: &flags },
            cache: None,
            progress: &worldhost_core::load::Quiet,
            provisional: false,
        })
        .expect("the component loads");
        Harness::new(&RunContext {
            component: &prepared.loaded,
            flags: &flags,
            settings: &settings,
            args: &[],
        })
        .expect("the server is prepared")
    })
}

fuzz_target!(|data: &[u8]| {
    harness().exchange(data, Duration::from_secs(60));
});
