//! Exits with the code given as its first argument (default 3), after printing it.
fn main() {
    let code = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(3);
    println!("exiting with {code}");
    std::process::exit(code);
}
