//! Prints every environment variable it can see as NAME=VALUE, sorted, one per line.
fn main() {
    let mut vars: Vec<_> = std::env::vars().collect();
    vars.sort();
    for (name, value) in vars {
        println!("{name}={value}");
    }
}
