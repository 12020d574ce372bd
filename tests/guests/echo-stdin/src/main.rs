//! Copies stdin to stdout, upper-cased, so that the test sees the guest did the work.
use std::io::{Read, Write};

fn main() {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .expect("read stdin");
    std::io::stdout()
        .write_all(input.to_uppercase().as_bytes())
        .expect("write stdout");
}
