//! Exports `async func`s (the component model's async, as WASI 0.3 uses it), a plain function
//! beside them, and functions that take or return a stream or a future: what `--invoke` calls
//! in the store's event loop, and what it refuses with the type named.

wit_bindgen::generate!({
    inline: "
        package worldhost:p3-test@0.1.0;

        world async-calc {
            /// Waits a millisecond on WASI 0.3's clock, then adds.
            export slow-add: async func(a: u32, b: u32) -> u32;
            export greet: async func(name: string) -> string;
            export mul: func(a: u32, b: u32) -> u32;
            export crash: async func();
            export numbers: func() -> stream<u8>;
            export later: func(value: future<u32>) -> u32;
        }
    ",
});

struct AsyncCalc;

impl Guest for AsyncCalc {
    async fn slow_add(a: u32, b: u32) -> u32 {
        wasip3::clocks::monotonic_clock::wait_for(1_000_000).await;
        a.wrapping_add(b)
    }

    async fn greet(name: String) -> String {
        format!("Hello, {name}!")
    }

    fn mul(a: u32, b: u32) -> u32 {
        a.wrapping_mul(b)
    }

    async fn crash() {
        core::arch::wasm32::unreachable()
    }

    fn numbers() -> wit_bindgen::StreamReader<u8> {
        let (_tx, rx) = wit_stream::new();
        rx
    }

    fn later(_value: wit_bindgen::FutureReader<u32>) -> u32 {
        0
    }
}

export!(AsyncCalc);
