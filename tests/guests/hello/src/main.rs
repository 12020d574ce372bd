//! Prints a greeting: the smallest `wasi:cli/command`.
fn main() {
    println!("Hello, world!");
}
