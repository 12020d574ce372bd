//! Listening: the socket (a deep backlog, TCP_NODELAY), the accept loop within
//! `--max-concurrent-connections` and the open-file limit, and the shutdown on SIGINT or SIGTERM: it
//! stops accepting, lets in-flight requests finish within `--shutdown-grace`, and exits 0.

use crate::server::{Server, connection};
use anyhow::{Context as _, Result};
use hyper_util::server::graceful::GracefulShutdown;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// Listens, accepts until SIGINT or SIGTERM, then lets open connections finish their requests
/// within `--shutdown-grace` (hyper-util's graceful shutdown) and exits 0.
pub(crate) async fn run(server: Arc<Server>) -> Result<ExitCode> {
    let addr = server.args.addr;
    let listener = listen(addr).map_err(|e| match e.kind() {
        ErrorKind::AddrInUse => anyhow::anyhow!(
            "cannot listen on {addr}: the address is in use (is another server running there?); \
             choose another with `--addr`, or `--addr 127.0.0.1:0` for any free port"
        ),
        ErrorKind::PermissionDenied => anyhow::anyhow!(
            "cannot listen on {addr}: permission denied (ports below 1024 need privileges); \
             choose another with `--addr`"
        ),
        _ => anyhow::anyhow!("cannot listen on {addr}: {e}"),
    })?;
    let local = listener.local_addr()?;
    // Listen for signals before saying we serve: a signal right after the line is not lost.
    let mut signals = Signals::new()?;
    if let Some(addr) = server.args.shutdown_addr {
        let shutdown = TcpListener::bind(addr).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on `--shutdown-addr {addr}`: {e}; choose a free address (port 0: \
                     any free port, printed on stderr)"
            )
        })?;
        eprintln!(
            "Listening for shutdown on tcp://{}/",
            shutdown.local_addr()?
        );
        signals.shutdown = Some(shutdown);
    }
    eprintln!("Serving HTTP on http://{local}/");

    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = accept(&listener, &server.connections) => {
                let (stream, peer, open) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a moment, keep serving.
                        tracing::warn!("cannot accept a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let served = connection(server.clone(), stream, Some(graceful.watcher()));
                connections.spawn(async move {
                    // Held while the connection is open.
                    let _open = open;
                    if let Err(e) = served.await {
                        tracing::debug!(%peer, "connection ended: {e}");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            signal = signals.next() => {
                eprintln!("{signal}: stopping; finishing {} open connection(s)", connections.len());
                break;
            }
        }
    }
    drop(listener);
    let grace = server.args.shutdown_grace;
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!(
            "{} connection(s) still open after `--shutdown-grace {}`; closing them",
            connections.len(),
            humantime::format_duration(grace)
        );
        connections.abort_all();
    }
    Ok(ExitCode::SUCCESS)
}

/// Connections the kernel completes and holds for the accept loop: std's (and tokio's) bind
/// asks for 128, and a burst of a few hundred connections overflowed it (a dropped SYN is
/// retried a second later); Linux caps the value at `net.core.somaxconn` (4096 by default),
/// as Go's listener asks for.
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` (with SO_REUSEADDR, as std's) and a deep backlog.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Accepts the next connection once fewer than `--max-concurrent-connections` are open; the permit
/// returned is the connection's place.
async fn accept(
    listener: &TcpListener,
    open: &Arc<Semaphore>,
) -> std::io::Result<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    let permit = match open.clone().try_acquire_owned() {
        Ok(permit) => permit,
        Err(_) => {
            // Once a minute at most: under a flood this is hit on every accept.
            static WARNED: std::sync::Mutex<Option<std::time::Instant>> =
                std::sync::Mutex::new(None);
            let warn = {
                let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
                let due = warned.is_none_or(|at| at.elapsed() > Duration::from_secs(60));
                if due {
                    *warned = Some(std::time::Instant::now());
                }
                due
            };
            if warn {
                tracing::warn!(
                    "every connection `--max-concurrent-connections` allows is open; new ones wait until \
                     one closes"
                );
            }
            open.clone()
                .acquire_owned()
                .await
                .map_err(std::io::Error::other)?
        }
    };
    let (stream, peer) = listener.accept().await?;
    // A response goes out in pieces (the head as soon as the guest sets it, then the body as
    // it writes it): with Nagle's algorithm a small piece waits for the client's delayed ACK
    // of the last one, about 40 ms on Linux.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, "cannot set TCP_NODELAY: {e}");
    }
    Ok((stream, peer, permit))
}

/// How many connections may be open at once: `--max-concurrent-connections`, within the process's
/// open-file limit, which is first raised to its hard maximum (as Go's runtime does) since
/// every connection is a file descriptor.
pub(crate) fn connection_budget(wanted: usize) -> usize {
    /// Descriptors kept for everything else: the listener, the compilation cache, guests' files.
    const RESERVED: u64 = 64;
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut limit = getrlimit(Resource::Nofile);
        if limit.current < limit.maximum {
            let raised = rustix::process::Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                limit = raised;
            }
        }
        if let Some(files) = limit.current {
            let room = usize::try_from(files.saturating_sub(RESERVED)).unwrap_or(usize::MAX);
            if room < wanted {
                tracing::warn!(
                    "the open-file limit is {files}: at most {room} connections at once, not the \
                     {wanted} of `--max-concurrent-connections` (raise it with `ulimit -n`)"
                );
                return room.max(1);
            }
        }
    }
    wanted
}

/// SIGINT (Ctrl-C) and SIGTERM, listened for from the start: a signal that arrives while the
/// accept loop is busy is kept, not lost (a `ctrl_c()` made anew each turn would miss it);
/// and a connection to `--shutdown-addr`, if given.
struct Signals {
    shutdown: Option<TcpListener>,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                shutdown: None,
                int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
                term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self { shutdown: None })
    }

    async fn next(&mut self) -> &'static str {
        let shutdown = async {
            match &self.shutdown {
                // Only a connection counts: a failed accept (out of descriptors, say, under a
                // flood) must not stop the server.
                Some(listener) => loop {
                    match listener.accept().await {
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!("cannot accept on --shutdown-addr: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                },
                None => std::future::pending().await,
            }
        };
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => "SIGINT",
                _ = self.term.recv() => "SIGTERM",
                () = shutdown => "a connection to --shutdown-addr",
            }
        }
        #[cfg(not(unix))]
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => "Ctrl-C",
                () = shutdown => "a connection to --shutdown-addr",
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_connections_send_without_waiting_for_acks() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let open = Arc::new(Semaphore::new(1));
            let (accepted, _client) =
                tokio::join!(accept(&listener, &open), TcpStream::connect(addr));
            let (stream, _, _) = accepted.unwrap();
            assert!(stream.nodelay().unwrap(), "TCP_NODELAY is off");
        });
    }
}
