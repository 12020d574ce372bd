//! Exports `worldhost:test/host`, which `invoke-import` imports and no runner provides:
//! `--plug` fills that import with this component's export.
wit_bindgen::generate!({ path: "../../../wit/invoke-test.wit", world: "host-plug" });

struct Plug;

impl exports::worldhost::test::host::Guest for Plug {
    fn greet() -> String {
        "Hello from a plug!".into()
    }
}

export!(Plug);
