//! WAVE call parsing and typing: the input, as an `--invoke` call, parsed and typed against
//! the functions of the invoke-calc guest (every WIT value kind as a parameter), as `--invoke`
//! does before it runs anything. Any panic is a bug. WORLDHOST_FUZZ_COMPONENT names the
//! component (scripts/fuzz sets it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;
use worldhost_core::load::{Loader, Quiet, Target};
use worldhost_core::Loaded;

fn loaded() -> &'static Loaded {
    static LOADED: OnceLock<Loaded> = OnceLock::new();
    LOADED.get_or_init(|| {
        let path = std::env::var_os("WORLDHOST_FUZZ_COMPONENT")
            .expect("WORLDHOST_FUZZ_COMPONENT names invoke_calc.wasm (scripts/fuzz sets it)");
        let loader = Loader { cache: None, allow_precompiled: false, progress: &Quiet };
        let config = worldhost_core::engine::base_config(&worldhost_core::Settings::default());
        let target = Target { handler: None, config, start: None };
        loader.load(Path::new(&path), &target).expect("the component loads")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(call) = std::str::from_utf8(data) {
        let _ = worldhost_handler_invoke::fuzzing::type_call(loaded(), call);
    }
});
