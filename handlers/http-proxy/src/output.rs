//! A server's guest output, as wasmtime serve writes it: each line on the server's stdout or
//! stderr begins `stdout [ID] :: ` or `stderr [ID] :: `, ID being the instance's number (also
//! in its environment as `INSTANCE_ID`), so that the output of requests served at once can be
//! told apart; `--no-logging-prefix` leaves the lines as they are. A line is written at once
//! (prefix and text in one write, under the stream's lock): concurrent instances interleave
//! by whole lines, not within one.

use bytes::Bytes;
use std::io::{self, Write as _};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// Which of the server's streams.
#[derive(Clone, Copy)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// One instance's stdout or stderr.
#[derive(Clone)]
pub(crate) struct Prefixed {
    stream: Stream,
    prefix: Arc<str>,
    /// Whether the next byte begins a line (shared by the clones WASI makes of the stream).
    at_line_start: Arc<AtomicBool>,
}

impl Prefixed {
    /// `stream`, its lines prefixed with `prefix`.
    pub(crate) fn new(stream: Stream, prefix: String) -> Self {
        Prefixed {
            stream,
            prefix: prefix.into(),
            at_line_start: Arc::new(AtomicBool::new(true)),
        }
    }

    fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        let mut out = Vec::with_capacity(bytes.len() + self.prefix.len());
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            if self.at_line_start.load(Ordering::Relaxed) {
                out.extend_from_slice(self.prefix.as_bytes());
            }
            out.extend_from_slice(line);
            self.at_line_start
                .store(line.ends_with(b"\n"), Ordering::Relaxed);
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
