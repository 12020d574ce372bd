//! Prints each argument it was given, argv[0] included, one per line.
fn main() {
    for arg in std::env::args() {
        println!("{arg}");
    }
}
