//! Loading a file for an engine.

use wasmtime::Config;
use worldhost_core::load::{Loader, Quiet, Target};

#[test]
fn text_of_a_core_module_loads_as_a_module() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.wat");
    std::fs::write(&path, "(module (func (export \"_start\")))").unwrap();
    let loader = Loader {
        cache: None,
        allow_precompiled: false,
        progress: &Quiet,
    };
    let target = Target {
        handler: None,
        config: Config::new(),
        start: None,
    };
    let loaded = loader.load(&path, &target).unwrap();
    assert!(loaded.module().is_ok());
    let err = loaded.component().err().unwrap().to_string();
    assert!(
        err.contains("is a core WebAssembly module, not a component"),
        "{err}"
    );
    assert_eq!(loaded.world.export_list(), "`_start`");
}
