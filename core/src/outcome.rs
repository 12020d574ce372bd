//! How a guest ended, when it did not simply return: its own `exit(n)`, or a trap, classified
//! by what caused it (a limit of `-W`, or the guest's own fault). A value the command line
//! prints (exit 134 for a trap, as wasmtime gives on Unix) and a server answers with (504 for
//! a timeout, 500 otherwise); anything else a guest call fails with is an error of the host.

use crate::settings::Limits;
use std::fmt;
use std::process::ExitCode;
use std::time::Duration;
use wasmtime::{Trap, WasmBacktrace};
use wasmtime_wasi::I32Exit;

/// The exit status of a trapped guest: what a process killed by SIGABRT reports on Unix, as
/// wasmtime does.
pub const TRAP_EXIT: u8 = 134;

/// A guest's end other than a normal return; an [`std::error::Error`], so a handler returns
/// it with `?` and the command line prints it.
#[derive(Debug)]
pub struct GuestExit {
    /// The component's file name.
    pub name: String,
    /// How it ended.
    pub cause: Cause,
    /// The wasm backtrace of a trap, frames only.
    backtrace: Option<String>,
}

/// What ended a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// It called `exit(n)`.
    Exit(i32),
    /// It ran past `-W timeout`.
    Timeout(Duration),
    /// It ran out of `-W fuel`.
    OutOfFuel(u64),
    /// It trapped after `-W max-memory-size` refused it memory (its allocator gave up).
    OutOfMemory {
        /// The size it asked for, in bytes.
        wanted: usize,
        /// The limit.
        max: usize,
        /// The trap that followed.
        trap: Trap,
    },
    /// Any other trap: the guest's own fault.
    Trap(Trap),
}

impl GuestExit {
    /// Classifies the error a call into the guest `name` failed with, under `limits`, with
    /// `refused` the memory growth `-W max-memory-size` refused, if any; a host error is given
    /// back as it is.
    pub fn classify(
        name: &str,
        error: wasmtime::Error,
        limits: &Limits,
        refused: Option<usize>,
    ) -> Result<GuestExit, wasmtime::Error> {
        let cause = if let Some(exit) = error.downcast_ref::<I32Exit>() {
            Cause::Exit(exit.0)
        } else if let Some(&trap) = error.downcast_ref::<Trap>() {
            match (
                trap,
                limits.timeout,
                limits.fuel,
                refused,
                limits.max_memory_size,
            ) {
                (Trap::Interrupt, Some(timeout), ..) => Cause::Timeout(timeout),
                (Trap::OutOfFuel, _, Some(fuel), ..) => Cause::OutOfFuel(fuel),
                (trap, _, _, Some(wanted), Some(max)) => Cause::OutOfMemory { wanted, max, trap },
                (trap, ..) => Cause::Trap(trap),
            }
        } else {
            return Err(error);
        };
        let backtrace = error.downcast_ref::<WasmBacktrace>().map(|backtrace| {
            // wasmtime's own heading reads "error while executing at wasm backtrace:".
            let text = backtrace.to_string();
            text.split_once('\n')
                .map_or("", |(_, frames)| frames)
                .to_string()
        });
        Ok(GuestExit {
            name: name.to_string(),
            cause,
            backtrace,
        })
    }

    /// The error a handler returns for a failed call into the guest `name`: the [`GuestExit`]
    /// it classifies as, or the host error with `doing` ("running `app.wasm` failed") as its
    /// context.
    pub fn error(
        name: &str,
        error: wasmtime::Error,
        limits: &Limits,
        refused: Option<usize>,
        doing: impl FnOnce() -> String,
    ) -> anyhow::Error {
        match Self::classify(name, error, limits, refused) {
            Ok(exit) => exit.into(),
            Err(e) => anyhow::Error::from(e).context(doing()),
        }
    }

    /// The process's exit status: the guest's own (only its low byte reaches the parent on
    /// Unix), or [`TRAP_EXIT`].
    pub fn exit_code(&self) -> ExitCode {
        match self.cause {
            Cause::Exit(code) => ExitCode::from(code as u8),
            _ => ExitCode::from(TRAP_EXIT),
        }
    }

    /// Whether the guest trapped (rather than calling `exit`).
    pub fn trapped(&self) -> bool {
        !matches!(self.cause, Cause::Exit(_))
    }

    /// One line for a log: what happened, in the user's terms.
    pub fn summary(&self) -> String {
        let name = &self.name;
        match self.cause {
            Cause::Exit(code) => format!("`{name}` exited with status {code}"),
            Cause::Timeout(timeout) => format!(
                "`{name}` was stopped after `-W timeout={}`: it ran past its time limit",
                humantime::format_duration(timeout)
            ),
            Cause::OutOfFuel(fuel) => {
                format!(
                    "`{name}` ran out of fuel (`-W fuel={fuel}`); give it more fuel if it needs it"
                )
            }
            Cause::OutOfMemory { wanted, max, trap } => format!(
                "{} (it asked for {wanted} bytes of memory, past `-W max-memory-size={max}`)",
                trapped(name, trap)
            ),
            Cause::Trap(trap) => trapped(name, trap),
        }
    }
}

fn trapped(name: &str, trap: Trap) -> String {
    let text = trap.to_string();
    let text = text.strip_prefix("wasm trap: ").unwrap_or(&text);
    format!("`{name}` trapped: {text}")
}

/// The report for a terminal: what happened, a note on refused memory, and the wasm backtrace.
impl fmt::Display for GuestExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cause {
            Cause::OutOfMemory { wanted, max, trap } => write!(
                f,
                "{}\nnote: the guest asked for {wanted} bytes of memory, past `-W \
                 max-memory-size={max}`, and was refused",
                trapped(&self.name, trap)
            )?,
            _ => f.write_str(&self.summary())?,
        }
        if let Some(frames) = &self.backtrace {
            write!(f, "\nwasm backtrace:\n{frames}")?;
        }
        Ok(())
    }
}

impl std::error::Error for GuestExit {}
