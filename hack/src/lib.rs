//! Empty: this crate exists for the features it turns on in its dependencies (see its
//! Cargo.toml).
