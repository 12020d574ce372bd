//! Links the `worldhost` binary with packed relative relocations (DT_RELR) on GNU/Linux, where
//! glibc 2.36 and binutils 2.38 (Debian 12's) support them. A position-independent binary
//! applies one relocation per pointer in its read-only data at every start; wasmtime's WASI 0.3
//! brought that table to 2 MB, read at each start. Packed, it is about 20 KB: 80 fewer page
//! faults and 0.3 ms less CPU per start of a small component (docs/BENCHMARKS.md). ASLR is kept,
//! as with every PIE.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bin=worldhost=-Wl,-z,pack-relative-relocs");
    }
}
