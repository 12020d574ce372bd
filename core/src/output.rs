//! Writing to stdout without panicking: Rust ignores SIGPIPE, so `println!` into a pipe whose
//! reader has gone (`worldhost … | head -1`) would panic. A reader that went away ends the
//! output quietly.

use std::io::{ErrorKind, Write as _};

/// Writes `text` to stdout and flushes it. A closed pipe is not an error; `Ok(false)` says the
/// reader is gone, so the caller can stop producing output.
pub fn write_stdout(text: &str) -> std::io::Result<bool> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e),
    }
}
