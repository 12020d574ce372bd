//! The server: links WASI and wasi:http, pre-instantiates the component once, listens, serves
//! each connection with hyper (HTTP/1.1, keep-alive), and shuts down gracefully on SIGINT or
//! SIGTERM: it stops accepting, lets in-flight requests finish within `--shutdown-grace`, and
//! exits 0.

use crate::args::HttpProxyArgs;
use crate::host::{ServeHost, TICKS_PER_SECOND};
use crate::io::WriteBounded;
use crate::outgoing::OutgoingPolicy;
use crate::pool;
use crate::request;
use anyhow::{Context as _, Result, bail};
use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use wasmtime::Engine;
use wasmtime::component::Linker;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use worldhost_core::engine::cache_for;
use worldhost_core::link::link_unprovided;
use worldhost_core::{Loaded, RunContext, Settings};

/// What every request needs, shared.
pub(crate) struct Server {
    /// The code requests are served from; replaced once when provisional code is completed.
    runner: RwLock<Arc<Runner>>,
    pub settings: Settings,
    /// The component's file name: the guest's argv[0] and the name in logs.
    pub name: String,
    pub args: HttpProxyArgs,
    pub permits: Arc<Semaphore>,
    /// How many permits `permits` was given: what the instance pool holds of the component,
    /// at most `--max-concurrent-requests`.
    capacity: std::sync::atomic::AtomicUsize,
    /// One permit per open connection (`--max-connections`, within the open-file limit).
    pub connections: Arc<Semaphore>,
    pub outgoing: OutgoingPolicy,
}

/// The pre-instantiated component requests are served from, with the ticker of its engine.
pub(crate) struct Runner {
    pub pre: ProxyPre<ServeHost>,
    _ticker: EpochTicker,
}

impl Runner {
    /// Links `loaded` and pre-instantiates it, in an engine whose instance pool holds
    /// `requests` of it at once where it can; returns how many it holds.
    fn new(loaded: &Loaded, settings: &Settings, requests: usize) -> Result<(Self, usize)> {
        let (loaded, holds) = pool::sized(loaded, settings, requests)?;
        let loaded: &Loaded = &loaded;
        let mut linker: Linker<ServeHost> = Linker::new(&loaded.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        link_unprovided(&mut linker, loaded, settings, &["http"])?;
        let pre = linker
            .instantiate_pre(loaded.component()?)
            .map_err(anyhow::Error::from)
            .and_then(|pre| ProxyPre::new(pre).map_err(anyhow::Error::from))
            .with_context(|| format!("cannot prepare `{}` for serving", loaded.path.display()))?;
        let runner = Self {
            _ticker: EpochTicker::start(loaded.engine.clone()),
            pre,
        };
        Ok((runner, holds))
    }
}

impl Server {
    /// Gives `permits` `holds` permits in all (the pool of new code may hold another number).
    fn resize_permits(&self, holds: usize) {
        let before = self.capacity.swap(holds, Ordering::Relaxed);
        if holds > before {
            self.permits.add_permits(holds - before);
        } else {
            self.permits.forget_permits(before - holds);
        }
    }

    /// The code a new request is served from.
    pub(crate) fn runner(&self) -> Arc<Runner> {
        self.runner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

pub(crate) fn serve(cx: RunContext<'_>, args: HttpProxyArgs) -> Result<ExitCode> {
    let server = prepare(&cx, args)?;
    if cx.component.is_provisional() {
        tracing::info!(
            "serving from code compiled by Winch, wasmtime's baseline compiler, while \
             Cranelift's compiles in the background"
        );
        complete_in_background(&server, cx.component);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let exit = runtime.block_on(run(server));
    // A guest that computes forever, without `-W timeout`, never ends: its task is dropped at
    // exit rather than waited for.
    runtime.shutdown_background();
    exit
}

/// Checks the flags, links the component and pre-instantiates it: everything but the socket.
pub(crate) fn prepare(cx: &RunContext<'_>, args: HttpProxyArgs) -> Result<Arc<Server>> {
    let loaded = cx.component;
    if args.max_concurrent_requests == 0 {
        bail!("`--max-concurrent-requests 0` would refuse every request; give at least 1");
    }
    if args.max_connections == 0 {
        bail!("`--max-connections 0` would accept no connection; give at least 1");
    }
    for (flag, timeout) in [
        ("--header-read-timeout", args.header_read_timeout),
        ("--body-read-timeout", args.body_read_timeout),
        ("--response-write-timeout", args.response_write_timeout),
    ] {
        if timeout.is_zero() {
            bail!("`{flag} 0` would cut every client off at once; give a duration such as `30s`");
        }
    }
    let (runner, holds) = Runner::new(loaded, cx.settings, args.max_concurrent_requests)?;
    let connections = connection_budget(args.max_connections);
    let server = Arc::new(Server {
        runner: RwLock::new(Arc::new(runner)),
        settings: cx.settings.clone(),
        name: loaded.name.clone(),
        permits: Arc::new(Semaphore::new(holds)),
        capacity: holds.into(),
        connections: Arc::new(Semaphore::new(connections)),
        outgoing: OutgoingPolicy::new(&args.allow_outgoing)?,
        args,
    });
    Ok(server)
}

/// Compiles the full code of provisional `loaded` (Cranelift's) on a thread in the
/// background, on one core, so that requests are served meanwhile; then new requests are
/// served from it (those in flight finish on the provisional code). It goes into the cache, so
/// the next start begins with it. (Not at a lower priority: under full load a niced compile
/// would get almost no CPU, and the server would stay on the provisional code for minutes.)
/// Should it fail, the server goes on with the provisional code, which is as safe, only
/// slower.
fn complete_in_background(server: &Arc<Server>, loaded: &Loaded) {
    let server = server.clone();
    let loaded = loaded.clone();
    let spawned = std::thread::Builder::new()
        .name("worldhost-compile".into())
        .spawn(move || {
            let started = std::time::Instant::now();
            let completed = loaded
                .completed(&server.settings, cache_for(&server.settings).as_ref())
                .and_then(|full| {
                    Runner::new(&full, &server.settings, server.args.max_concurrent_requests)
                });
            match completed {
                Ok((runner, holds)) => {
                    server.resize_permits(holds);
                    *server
                        .runner
                        .write()
                        .unwrap_or_else(PoisonError::into_inner) = Arc::new(runner);
                    tracing::info!(
                        elapsed = ?started.elapsed(),
                        "serving from the code compiled by Cranelift"
                    );
                }
                Err(e) => tracing::warn!(
                    "cannot compile `{}` with Cranelift ({e:#}); serving on from Winch's code",
                    server.name
                ),
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the background compile ({e}); serving from Winch's code");
    }
}

/// Serves one connection until the client closes it, its header read times out, or `stop`
/// turns true (then the request in flight is finished and no new one is taken).
pub(crate) async fn connection<I>(
    server: Arc<Server>,
    io: I,
    mut stop: watch::Receiver<bool>,
) -> Result<(), hyper::Error>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let header_read_timeout = server.args.header_read_timeout;
    let io = WriteBounded::new(io, server.args.response_write_timeout);
    let service = hyper::service::service_fn(move |req| request::handle(server.clone(), req));
    let conn = http1::Builder::new()
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => result,
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}

async fn run(server: Arc<Server>) -> Result<ExitCode> {
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
    eprintln!("Serving HTTP on http://{local}/");

    let (stop_tx, stop_rx) = watch::channel(false);
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
                let served = connection(server.clone(), stream, stop_rx.clone());
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
    let _ = stop_tx.send(true);
    let grace = server.args.shutdown_grace;
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        eprintln!(
            "{} connection(s) still open after `--shutdown-grace {}`; closing them",
            connections.len(),
            humantime_secs(grace)
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

/// Accepts the next connection once fewer than `--max-connections` are open; the permit
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
                    "every connection `--max-connections` allows is open; new ones wait until \
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

/// How many connections may be open at once: `--max-connections`, within the process's
/// open-file limit, which is first raised to its hard maximum (as Go's runtime does) since
/// every connection is a file descriptor.
fn connection_budget(wanted: usize) -> usize {
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
                     {wanted} of `--max-connections` (raise it with `ulimit -n`)"
                );
                return room.max(1);
            }
        }
    }
    wanted
}

fn humantime_secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// SIGINT (Ctrl-C) and SIGTERM, listened for from the start: a signal that arrives while the
/// accept loop is busy is kept, not lost (a `ctrl_c()` made anew each turn would miss it).
struct Signals {
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
                int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
                term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => "SIGINT",
                _ = self.term.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// Advances the engine's epoch TICKS_PER_SECOND times a second: running guests yield at the
/// ticks, and the deadline of `-W timeout` is checked; one thread per [`Runner`].
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub(crate) fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("worldhost-epoch".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1000 / TICKS_PER_SECOND));
                    engine.increment_epoch();
                }
            })
            .expect("a thread can be spawned for the epoch ticker");
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
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
