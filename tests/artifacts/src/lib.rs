//! Test support shared by worldhost's integration tests: the paths of the guest components in
//! `tests/guests` (built for `wasm32-wasip2` by this crate's build script; tests commit no
//! `.wasm`), and one way to run a binary and check what it did.

mod invocation;

pub use invocation::{Invocation, Outcome};

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
