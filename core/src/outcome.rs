//! How a guest call ended, as a process exit status: the guest's own `exit(n)`, a trap (reported
//! with its wasm backtrace, exit 134 as wasmtime gives on Unix), or a host error (returned, so
//! `main` prints it and exits 1). Shared by every handler that runs a guest to completion.

use crate::settings::Limits;
use anyhow::Result;
use std::process::ExitCode;
use wasmtime::{Trap, WasmBacktrace};
use wasmtime_wasi::I32Exit;

/// The exit status of a trapped guest: what a process killed by SIGABRT reports on Unix, as
/// wasmtime does.
pub const TRAP_EXIT: u8 = 134;

/// Turns the error a guest call ended with into an exit status; `name` is the component's file
/// name, for the report; `refused` the memory growth `-W max-memory-size` refused, if any
/// (`MemoryLimiter::refused`). A trap is printed on stderr here; any other error is returned.
pub fn exit_status_of(
    name: &str,
    error: wasmtime::Error,
    limits: &Limits,
    refused: Option<usize>,
) -> Result<ExitCode> {
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        // Only the low byte reaches the parent process on Unix.
        return Ok(ExitCode::from(exit.0 as u8));
    }
    if let Some(trap) = error.downcast_ref::<Trap>() {
        eprintln!("error: {}", trap_message(name, *trap, limits));
        if let (Some(wanted), Some(max)) = (refused, limits.max_memory_size) {
            eprintln!(
                "note: the guest asked for {wanted} bytes of memory, past `-W \
                 max-memory-size={max}`, and was refused"
            );
        }
        if let Some(backtrace) = error.downcast_ref::<WasmBacktrace>() {
            // wasmtime's own heading reads "error while executing at wasm backtrace:".
            let text = backtrace.to_string();
            let frames = text.split_once('\n').map_or("", |(_, frames)| frames);
            eprintln!("wasm backtrace:\n{frames}");
        }
        return Ok(ExitCode::from(TRAP_EXIT));
    }
    Err(anyhow::Error::from(error).context(format!("running `{name}` failed")))
}

/// A trap in the user's terms: the limit that caused it, when one did.
pub fn trap_message(name: &str, trap: Trap, limits: &Limits) -> String {
    match (trap, limits.timeout, limits.fuel) {
        (Trap::Interrupt, Some(timeout), _) => format!(
            "`{name}` was stopped after `-W timeout={}`: it ran past its time limit",
            humantime::format_duration(timeout)
        ),
        (Trap::OutOfFuel, _, Some(fuel)) => {
            format!("`{name}` ran out of fuel (`-W fuel={fuel}`); give it more fuel if it needs it")
        }
        _ => {
            let text = trap.to_string();
            let text = text.strip_prefix("wasm trap: ").unwrap_or(&text);
            format!("`{name}` trapped: {text}")
        }
    }
}
