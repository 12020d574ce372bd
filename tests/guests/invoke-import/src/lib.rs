//! Imports `worldhost:test/host`, which no runner provides: refused unless
//! `-W unknown-imports-trap`, and then only `call-host` traps.
wit_bindgen::generate!({ path: "../../../wit/invoke-test.wit", world: "needs-host" });

struct NeedsHost;

impl Guest for NeedsHost {
    fn call_host() -> String {
        worldhost::test::host::greet()
    }

    fn no_host() -> u32 {
        7
    }
}

export!(NeedsHost);
