//! Exports `worldhost:probe/ping`: only the test-only probe handler claims it.
wit_bindgen::generate!({ path: "../../../wit/probe.wit", world: "probe" });

struct Probe;

impl exports::worldhost::probe::ping::Guest for Probe {
    fn ping() -> String {
        "pong from the probe guest".into()
    }
}

export!(Probe);
