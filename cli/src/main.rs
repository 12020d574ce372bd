//! The `worldhost` binary: everything lives in the library, so that test binaries can link
//! extra handlers around the same `main`.
fn main() -> std::process::ExitCode {
    worldhost::main()
}
