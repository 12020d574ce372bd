//! Links the `worldhost` binary with packed relative relocations (DT_RELR) on GNU/Linux, where
//! glibc 2.36 and binutils 2.38 (Debian 12's) support them: the table of relocations a start
//! applies shrinks from 2 MB to about 20 KB. Measured both ways: docs/BENCHMARKS.md, "Settings
//! chosen by measurement"; measure on the machine at hand before changing it.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bin=worldhost=-Wl,-z,pack-relative-relocs");
    }
}
