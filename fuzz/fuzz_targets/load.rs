//! Load, describe and select on arbitrary bytes: `worldhost inspect` (plain, `--wit` or
//! `--json`, by the input's length) on a file holding the input. Seeded with the test guests,
//! so libFuzzer mutates valid components and modules as well as noise. Any panic is a bug:
//! bad input must get an error, never a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::ffi::OsString;
use std::io::Write as _;

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::Builder::new()
        .suffix(".wasm")
        .tempfile()
        .expect("a temporary file");
    file.write_all(data).expect("the input is written");
    let mut argv: Vec<OsString> = vec!["worldhost".into(), "inspect".into(), "--no-cache".into()];
    match data.len() % 3 {
        1 => argv.push("--wit".into()),
        2 => argv.push("--json".into()),
        _ => {}
    }
    argv.push(file.path().into());
    let _ = worldhost::main_from(argv);
});
