//! Exports `worldhost:test/host@0.1.0` with another `greet` than the one `invoke-import`
//! imports (it takes a name): a plug of the right name and the wrong type, which `--plug`
//! refuses by name.
wit_bindgen::generate!({
    inline: "
        package worldhost:test@0.1.0;

        interface host {
            greet: func(name: string) -> string;
        }

        world misfit {
            export host;
        }
    ",
});

struct Misfit;

impl exports::worldhost::test::host::Guest for Misfit {
    fn greet(name: String) -> String {
        format!("Hello, {name}!")
    }
}

export!(Misfit);
