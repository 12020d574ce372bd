//! Listening: the accept loops on the sockets, within `--max-concurrent-connections` and the
//! open-file limit, each connection in a task of its own; the signals, returned as values to
//! the entry (`serve`), which acts on them; and the drain on a stop: no new connection, and
//! the requests in flight finish within `--shutdown-grace`.

use crate::connection::{ConnectionError, connection};
use crate::sockets::{Listener, accept_tcp, open_all};
use crate::state::Server;
use anyhow::{Context as _, Result, anyhow};
use hyper_util::server::graceful::GracefulShutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// The server listening: its accept loops, and the signals it waits for.
pub(crate) struct Listening {
    server: Arc<Server>,
    signals: Signals,
    acceptors: JoinSet<()>,
    graceful: Arc<GracefulShutdown>,
}

impl Listening {
    /// Opens every socket, says where it serves, and starts accepting.
    pub(crate) async fn start(server: &Arc<Server>) -> Result<Self> {
        let listeners = open_all(&server.args.addr, server.args.systemd_listenfd)?;
        // Listen for signals before saying we serve: a signal right after the line is not lost.
        let mut signals = Signals::new()?;
        if let Some(addr) = server.args.shutdown_addr {
            let shutdown = TcpListener::bind(addr).await.map_err(|e| {
                anyhow!(
                    "cannot listen on `--shutdown-addr {addr}`: {e}; choose a free address (port \
                     0: any free port, printed on stderr)"
                )
            })?;
            eprintln!(
                "Listening for shutdown on tcp://{}/",
                shutdown.local_addr()?
            );
            signals.shutdown = Some(shutdown);
        }
        for listener in &listeners {
            let tls = server.tls.is_some();
            eprintln!(
                "Serving {} on {}",
                if tls { "HTTPS" } else { "HTTP" },
                listener.url(tls)?
            );
        }
        let graceful = Arc::new(GracefulShutdown::new());
        let mut acceptors = JoinSet::new();
        for listener in listeners {
            acceptors.spawn(accept_loop(server.clone(), listener, graceful.clone()));
        }
        Ok(Self {
            server: server.clone(),
            signals,
            acceptors,
            graceful,
        })
    }

    /// The next signal.
    pub(crate) async fn next(&mut self) -> Signal {
        self.signals.next().await
    }

    /// Stops accepting, then lets open connections finish their requests within
    /// `--shutdown-grace` (hyper-util's graceful shutdown).
    pub(crate) async fn stop(mut self, signal: &str) {
        let server = &self.server;
        let grace = server.args.shutdown_grace;
        // Telemetry goes out within the grace too, not after it.
        worldhost_core::telemetry::flush_by(std::time::Instant::now() + grace);
        eprintln!(
            "{signal}: stopping; finishing {} open connection(s)",
            server.open_connections()
        );
        // The listeners close with their loops; then only the connections hold watchers.
        self.acceptors.abort_all();
        while self.acceptors.join_next().await.is_some() {}
        let graceful = Arc::into_inner(self.graceful).expect("the accept loops have ended");
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            eprintln!(
                "{} connection(s) still open after `--shutdown-grace {}`; closing them",
                server.open_connections(),
                humantime::format_duration(grace)
            );
        }
    }
}

/// Accepts on `listener` until aborted, serving each connection in a task of its own.
async fn accept_loop(server: Arc<Server>, listener: Listener, graceful: Arc<GracefulShutdown>) {
    loop {
        let permit = match connection_place(&server.connections).await {
            Ok(permit) => permit,
            Err(_) => return,
        };
        let accepted = match &listener {
            Listener::Tcp(listener) => accept_tcp(listener).await.map(|(stream, peer)| {
                let served = connection(server.clone(), stream, graceful.watcher());
                spawn(&server, served, peer.to_string(), permit);
            }),
            Listener::Unix { listener, .. } => listener.accept().await.map(|(stream, _)| {
                let served = connection(server.clone(), stream, graceful.watcher());
                spawn(&server, served, "a Unix socket client".into(), permit);
            }),
        };
        if let Err(e) = accepted {
            // Out of file descriptors and the like: wait a moment, keep serving.
            tracing::warn!("cannot accept a connection: {e}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Runs a connection, holding its place under `--max-concurrent-connections` while it is open.
fn spawn(
    server: &Arc<Server>,
    served: impl Future<Output = Result<(), ConnectionError>> + Send + 'static,
    peer: String,
    place: OwnedSemaphorePermit,
) {
    use std::sync::atomic::Ordering;
    server.open.fetch_add(1, Ordering::Relaxed);
    let server = server.clone();
    tokio::spawn(async move {
        let _place = place;
        if let Err(e) = served.await {
            tracing::debug!(%peer, "connection ended: {e}");
        }
        server.open.fetch_sub(1, Ordering::Relaxed);
    });
}

/// A place under `--max-concurrent-connections`: at once if one is free, otherwise once a
/// connection closes (with a warning, once a minute at most).
async fn connection_place(open: &Arc<Semaphore>) -> std::io::Result<OwnedSemaphorePermit> {
    if let Ok(permit) = open.clone().try_acquire_owned() {
        return Ok(permit);
    }
    // Once a minute at most: under a flood this is hit on every accept.
    static WARNED: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
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
            "every connection `--max-concurrent-connections` allows is open; new ones wait \
             until one closes"
        );
    }
    open.clone()
        .acquire_owned()
        .await
        .map_err(std::io::Error::other)
}

/// What a signal asks of the server.
pub(crate) enum Signal {
    /// SIGHUP: load the component again.
    Reload,
    /// SIGINT, SIGTERM or a connection to `--shutdown-addr`, named.
    Stop(&'static str),
}

/// SIGINT (Ctrl-C), SIGTERM and SIGHUP, listened for from the start: a signal that arrives
/// while the server is busy is kept, not lost (a `ctrl_c()` made anew each turn would miss
/// it); and a connection to `--shutdown-addr`, if given.
struct Signals {
    shutdown: Option<TcpListener>,
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            shutdown: None,
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            hup: signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?,
        })
    }

    async fn next(&mut self) -> Signal {
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
        tokio::select! {
            _ = self.int.recv() => Signal::Stop("SIGINT"),
            _ = self.term.recv() => Signal::Stop("SIGTERM"),
            _ = self.hup.recv() => Signal::Reload,
            () = shutdown => Signal::Stop("a connection to --shutdown-addr"),
        }
    }
}
