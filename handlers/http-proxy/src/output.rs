//! A server's guest output, as wasmtime serve writes it: each line on the server's stdout or
//! stderr begins `stdout [ID] :: ` or `stderr [ID] :: `, ID being the instance's number (also
//! in its environment as `INSTANCE_ID`), so that the output of requests served at once can be
//! told apart; `--no-logging-prefix` leaves the lines as they are. What one write of the guest
//! holds is written at once, prefixes included, under the stream's lock: output written a line
//! at a time (as `println!` does) interleaves by whole lines across instances.

use bytes::Bytes;
use std::io::{self, Write as _};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// How a server's instances are named and their output written: each new instance takes the
/// next number (its `INSTANCE_ID`) and, unless `--no-logging-prefix`, prefixes its lines with it.
pub(crate) struct Instances {
    next: AtomicU64,
    prefix: bool,
    stdout: bool,
    stderr: bool,
}

impl Instances {
    /// Numbering from 0; `prefix` unless `--no-logging-prefix`; `stdout` and `stderr` as the
    /// settings give the guest the server's streams.
    pub(crate) fn new(prefix: bool, stdout: bool, stderr: bool) -> Self {
        Instances {
            next: AtomicU64::new(0),
            prefix,
            stdout,
            stderr,
        }
    }

    /// A new instance's WASI context, past what the settings grant: stdin closed (a server's
    /// guest reads its request, never the terminal), `INSTANCE_ID` in its environment and,
    /// unless `--no-logging-prefix`, its output lines prefixed with its number, as wasmtime
    /// serve does.
    pub(crate) fn wasi(&self, wasi: &mut WasiCtxBuilder) {
        wasi.stdin(wasmtime_wasi::p2::pipe::ClosedInputStream);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        wasi.env("INSTANCE_ID", id.to_string());
        if !self.prefix {
            return;
        }
        let instance = Instance::new(id);
        if self.stdout {
            wasi.stdout(Prefixed::new(Stream::Stdout, &instance));
        }
        if self.stderr {
            wasi.stderr(Prefixed::new(Stream::Stderr, &instance));
        }
    }
}

/// Which of the server's streams.
#[derive(Clone, Copy)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// An instance's number and, for each of its two streams, whether the next byte begins a
/// line: one allocation per instance, shared by the clones WASI makes of the streams.
pub(crate) struct Instance {
    id: u64,
    stdout_at_line_start: AtomicBool,
    stderr_at_line_start: AtomicBool,
}

impl Instance {
    /// Instance `id`, its streams at the start of a line.
    pub(crate) fn new(id: u64) -> Arc<Self> {
        Arc::new(Instance {
            id,
            stdout_at_line_start: AtomicBool::new(true),
            stderr_at_line_start: AtomicBool::new(true),
        })
    }
}

/// One instance's stdout or stderr. The prefix is written only when the guest writes: an
/// instance that prints nothing (most requests) costs no formatting.
#[derive(Clone)]
pub(crate) struct Prefixed {
    stream: Stream,
    instance: Arc<Instance>,
}

impl Prefixed {
    /// `instance`'s `stream`.
    pub(crate) fn new(stream: Stream, instance: &Arc<Instance>) -> Self {
        Prefixed {
            stream,
            instance: instance.clone(),
        }
    }

    fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        let (name, at_line_start) = match self.stream {
            Stream::Stdout => ("stdout", &self.instance.stdout_at_line_start),
            Stream::Stderr => ("stderr", &self.instance.stderr_at_line_start),
        };
        let mut out = Vec::with_capacity(bytes.len() + 32);
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            if at_line_start.load(Ordering::Relaxed) {
                write!(out, "{name} [{}] :: ", self.instance.id)?;
            }
            out.extend_from_slice(line);
            at_line_start.store(line.ends_with(b"\n"), Ordering::Relaxed);
        }
        match self.stream {
            Stream::Stdout => io::stdout().lock().write_all(&out),
            Stream::Stderr => io::stderr().lock().write_all(&out),
        }
    }
}

impl StdoutStream for Prefixed {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl IsTerminal for Prefixed {
    fn is_terminal(&self) -> bool {
        match self.stream {
            Stream::Stdout => io::IsTerminal::is_terminal(&io::stdout()),
            Stream::Stderr => io::IsTerminal::is_terminal(&io::stderr()),
        }
    }
}

impl OutputStream for Prefixed {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_all(&bytes)
            .map_err(|e| StreamError::LastOperationFailed(e.into()))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for Prefixed {
    async fn ready(&mut self) {}
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.write_all(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
