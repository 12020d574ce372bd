//! The server's state: the component linked with WASI and wasi:http and pre-instantiated once,
//! the request and connection bounds, and how one connection is served (TLS if asked, then
//! HTTP/1.1 with keep-alive, or HTTP/2 by ALPN or prior knowledge).
//! The accept loop and shutdown are in `listen`, the tiered start in `start`, reloads in
//! `reload`.

use crate::args::HttpProxyArgs;
use crate::conn::Protocol;
use crate::host::YIELD_AFTER;
use crate::io::WriteBounded;
use crate::output::Instances;
use crate::pool;
use crate::request;
use crate::service::{self, Dispatch, Service};
use anyhow::{Context as _, Result, bail};
use hyper::header::{HeaderName, HeaderValue};
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::Watcher;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::Semaphore;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use worldhost_core::code::kind::{Reading, read_file};
use worldhost_core::{GuestLinker, GuestPre, Host, Loaded, RunContext, Settings, UsageError};

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
    /// One permit per open connection (`--max-concurrent-connections`, within the open-file limit).
    pub connections: Arc<Semaphore>,
    /// How many permits `connections` was given.
    connection_places: usize,
    /// How many connections are open.
    pub open: std::sync::atomic::AtomicUsize,
    /// `--tls-cert` and `--tls-key`'s acceptor.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// The headers of `-H`, added to every request.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Numbers the instances and prefixes their output.
    pub instances: Arc<Instances>,
    /// What reloading the component needs.
    pub reloads: crate::reload::Reloads,
    /// The command line the server was started with, and the words after the component: what
    /// a runner for new code (Cranelift's, or a reload's) is made with.
    pub matches: clap::ArgMatches,
    pub guest_args: Vec<String>,
}

/// The pre-instantiated component requests are served from.
pub(crate) struct Runner {
    /// Makes each request's store (and ticks the engine's epoch while it lives).
    pub guest: Arc<GuestPre>,
    /// How requests reach it.
    pub serving: Serving,
    /// Which version of the file it was loaded from: the start of its BLAKE3 hash, set once
    /// known (the first is hashed in the background, off the start's path).
    pub version: Arc<OnceLock<String>>,
}

/// How requests reach the component.
pub(crate) enum Serving {
    /// A fresh instance per request, from the proxy world's typed exports (a WASI 0.2 proxy).
    Fresh(ProxyPre<Host>),
    /// Instances reused across requests (a WASI 0.3 service, or a 0.2 proxy with
    /// `--max-instance-reuse-count` above 1).
    Reused(Dispatch),
}

impl Runner {
    /// Links `cx`'s component and pre-instantiates it, in an engine whose instance pool holds
    /// `--max-concurrent-requests` of it at once where it can; returns how many it holds.
    pub(crate) fn new(
        cx: &RunContext<'_>,
        args: &HttpProxyArgs,
        instances: &Arc<Instances>,
        version: Arc<OnceLock<String>>,
    ) -> Result<(Self, usize)> {
        let (loaded, holds) = pool::sized(cx.component, cx.settings, args.max_concurrent_requests)?;
        let cx = RunContext {
            component: &loaded,
            ..*cx
        };
        let guest = GuestLinker::new_async(&cx)?
            .http()?
            .yield_after(YIELD_AFTER)
            .prepare()?;
        let guest = Arc::new(guest);
        let p3 = crate::serves_p3(&loaded.world, cx.settings);
        let reuse = args.reuse(p3, cx.settings.limits.fuel.is_some());
        let cannot = || format!("cannot prepare `{}` for serving", loaded.path.display());
        let serving = if reuse.total > 1 || p3 {
            let pre = service::proxy_pre(&guest, p3).with_context(cannot)?;
            Serving::Reused(Service::dispatch(
                guest.clone(),
                pre,
                instances.clone(),
                reuse,
            ))
        } else {
            let pre = ProxyPre::new(guest.instance_pre().clone())
                .map_err(anyhow::Error::from)
                .with_context(cannot)?;
            Serving::Fresh(pre)
        };
        Ok((
            Self {
                guest,
                serving,
                version,
            },
            holds,
        ))
    }
}

impl Server {
    /// A runner for `loaded` (the full code of the start's, or a reload's), made as the first
    /// was, named `version`.
    pub(crate) fn runner_for(
        &self,
        loaded: &Loaded,
        version: Arc<OnceLock<String>>,
    ) -> Result<(Runner, usize)> {
        let cx = RunContext {
            component: loaded,
            matches: &self.matches,
            settings: &self.settings,
            args: &self.guest_args,
        };
        Runner::new(&cx, &self.args, &self.instances, version)
    }

    /// How many connections are open.
    pub(crate) fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// How long a new connection may be idle until its first request (see
    /// `--header-read-timeout`): the flag's duration, or under pressure (more than half the
    /// connection places taken) [`pressed`]. A client that opens connections and sends nothing
    /// (or trickles) then holds each for seconds, not the full bound, while healthy clients,
    /// which send their request at once, wait in the backlog for seconds at most. Behind a load
    /// balancer every connection comes from one address: a bound per peer would cut it off,
    /// this does not.
    pub(crate) fn first_idle_bound(&self) -> Duration {
        let full = self.args.header_read_timeout;
        let free = self.connections.available_permits();
        match free < self.connection_places / 2 {
            true => pressed(full),
            false => full,
        }
    }

    /// Whether more than half the request places (`--max-concurrent-requests`, or what the
    /// pool holds) are taken: then a new request's body gets [`pressed`]
    /// `--body-read-timeout`, and an HTTP/2 connection past its share has its stream refused.
    pub(crate) fn requests_pressed(&self) -> bool {
        let places = self.capacity.load(Ordering::Relaxed);
        self.permits.available_permits() < places / 2
    }

    /// Gives `permits` `holds` permits in all (the pool of new code may hold another number).
    fn resize_permits(&self, holds: usize) {
        let before = self.capacity.load(Ordering::Relaxed);
        if holds > before {
            self.permits.add_permits(holds - before);
            self.capacity.store(holds, Ordering::Relaxed);
        } else {
            // Only free permits can be forgotten: with requests in flight, fewer may be. The
            // count kept is what was really left, so the next resize starts from the truth
            // (meanwhile a request past the new pool gets its 503 from the pool).
            let forgotten = self.permits.forget_permits(before - holds);
            self.capacity.store(before - forgotten, Ordering::Relaxed);
        }
    }

    /// The code a new request is served from.
    pub(crate) fn runner(&self) -> Arc<Runner> {
        self.runner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// New requests are served from `runner`, whose pool holds `holds`; those in flight finish
    /// on the old one. With `if_from`, only if the runner serving is still of that version (a
    /// reload may have come first); returns whether it was replaced.
    pub(crate) fn replace_runner(
        &self,
        runner: Runner,
        holds: usize,
        if_from: Option<&Arc<OnceLock<String>>>,
    ) -> bool {
        let mut serving = self.runner.write().unwrap_or_else(PoisonError::into_inner);
        if if_from.is_some_and(|from| !Arc::ptr_eq(from, &serving.version)) {
            return false;
        }
        self.resize_permits(holds);
        *serving = Arc::new(runner);
        true
    }
}

pub(crate) fn serve(cx: RunContext<'_>, args: HttpProxyArgs) -> Result<ExitCode> {
    let server = prepare(&cx, args)?;
    if cx.component.is_provisional() {
        tracing::info!(
            "serving from code compiled by Winch, wasmtime's baseline compiler, while \
             Cranelift's compiles in the background"
        );
        crate::start::complete_in_background(&server, cx.component);
    }
    crate::reload::start(&server)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let exit = runtime.block_on(crate::listen::run(server));
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
    if args.max_requests_per_connection == Some(0) {
        bail!(
            "`--max-requests-per-connection 0` would refuse every HTTP/2 request; give at least 1"
        );
    }
    if cx.settings.coredump.is_some() {
        return Err(UsageError(
            "`-D coredump` writes the core dump of one run's trap; a server's trapping requests \
             would each write it over the last: leave it out of `serve` (each trap is logged \
             with its backtrace)"
                .into(),
        )
        .into());
    }
    // Fuel is a store's: with requests at once on a reused instance, one's spending would
    // stop another. An instance that takes one at a time is refilled for each.
    if cx.settings.limits.fuel.is_some()
        && let Some(n) = args.max_instance_concurrent_reuse_count.filter(|n| *n > 1)
    {
        return Err(UsageError(format!(
            "`-W fuel` bounds each request only when an instance serves one request at a time \
             (it is then refilled for each), and `--max-instance-concurrent-reuse-count {n}` \
             asks for {n}; leave it out (or give 1)"
        ))
        .into());
    }
    if args.max_concurrent_connections == 0 {
        bail!("`--max-concurrent-connections 0` would accept no connection; give at least 1");
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
    let stdio = &cx.settings.stdio;
    let instances = Arc::new(Instances::new(
        !args.no_logging_prefix,
        stdio.stdout,
        stdio.stderr,
    ));
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
        _ => None,
    };
    let (runner, holds) = Runner::new(cx, &args, &instances, Arc::new(OnceLock::new()))?;
    let connections = crate::listen::connection_budget(args.max_concurrent_connections);
    let server = Arc::new(Server {
        runner: RwLock::new(Arc::new(runner)),
        settings: cx.settings.clone(),
        name: loaded.name.clone(),
        permits: Arc::new(Semaphore::new(holds)),
        capacity: holds.into(),
        connections: Arc::new(Semaphore::new(connections)),
        connection_places: connections,
        open: 0.into(),
        tls,
        headers: parse_headers(&args.headers)?,
        instances,
        reloads: crate::reload::Reloads::new(&loaded.path),
        matches: cx.matches.clone(),
        guest_args: cx.args.to_vec(),
        args,
    });
    Ok(server)
}

/// The headers of `-H`: `name: value`, or `@FILE` with one per line.
fn parse_headers(headers: &[String]) -> Result<Vec<(HeaderName, HeaderValue)>> {
    let mut parsed = Vec::new();
    for header in headers {
        match header.strip_prefix('@') {
            // The file's lines are never quoted in an error: it may be anything.
            Some(file) => {
                let bytes = read_file(Path::new(file), Reading::AsGiven)
                    .with_context(|| format!("`-H @{file}`: cannot read the header file"))?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    anyhow::anyhow!("`-H @{file}` is not text; give one `name: value` a line")
                })?;
                let lines = text.lines().enumerate();
                for (n, line) in lines.filter(|(_, line)| !line.trim().is_empty()) {
                    parsed.push(parse_header(line).map_err(|_| {
                        anyhow::anyhow!(
                            "line {} of `-H @{file}` is not a header; write one `name: value` \
                             a line",
                            n + 1
                        )
                    })?);
                }
            }
            None => parsed.push(parse_header(header)?),
        }
    }
    Ok(parsed)
}

fn parse_header(header: &str) -> Result<(HeaderName, HeaderValue)> {
    let Some((name, value)) = header.split_once(':') else {
        bail!("`-H {header}` has no `:`; write `-H 'name: value'`");
    };
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .with_context(|| format!("`-H {header}`: `{}` is not a header name", name.trim()))?;
    let value = HeaderValue::from_str(value.trim_start())
        .with_context(|| format!("`-H {header}`: the value is not a header value"))?;
    Ok((name, value))
}

/// The shortest bound under pressure (see [`pressed`]).
const PRESSED_FLOOR: Duration = Duration::from_secs(1);

/// A bound on a client's wait under pressure: a tenth of `full`, at least a second (or `full`,
/// if shorter).
pub(crate) fn pressed(full: Duration) -> Duration {
    (full / 10).max(full.min(PRESSED_FLOOR))
}

/// Why a connection ended early.
pub(crate) type ConnectionError = Box<dyn std::error::Error + Send + Sync>;

/// How many streams an HTTP/2 client may reset before the server has taken them before its
/// connection is closed (GOAWAY, ENHANCE_YOUR_CALM): the "rapid reset" attack (CVE-2023-44487)
/// opens and cancels streams to make the server start work nobody waits for. h2's default.
const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;

/// How many streams the server may reset for a client's protocol errors before it closes the
/// connection (a client that makes it reset streams at will, CVE-2019-9514 and kin). hyper's
/// default.
const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;

/// Serves one connection until the client closes it or it is cut off (its TLS handshake, its
/// headers, or an idle spell past `--header-read-timeout`); once `shutdown` is signalled, the
/// requests in flight are finished and no new one is taken.
pub(crate) async fn connection<I>(
    server: Arc<Server>,
    io: I,
    shutdown: Watcher,
) -> Result<(), ConnectionError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = WriteBounded::new(io, server.args.response_write_timeout);
    let idle = server.first_idle_bound();
    match server.tls.clone() {
        Some(tls) => {
            let handshake = tls.accept(io);
            let io = tokio::time::timeout(idle, handshake)
                .await
                .map_err(|_| "the TLS handshake did not finish within `--header-read-timeout`")??;
            let protocol = match io.get_ref().1.alpn_protocol() {
                Some(b"h2") => Some(Protocol::Http2),
                Some(_) => Some(Protocol::Http1),
                None => None,
            };
            serve_http(server, io, protocol, idle, shutdown).await
        }
        None => serve_http(server, io, None, idle, shutdown).await,
    }
}

/// HTTP on `io`: the `protocol` ALPN agreed on, or else HTTP/2 if the client opens with its
/// preface (a client with prior knowledge) and HTTP/1.1 otherwise.
///
/// hyper's own connections, not hyper-util's auto builder (which tells the two apart the same
/// way): with the builder, HTTP/1.1 measured slower than before HTTP/2 came in, and without it,
/// not (`scripts/bench-serve --baseline`, docs/BENCHMARKS.md).
async fn serve_http<I>(
    server: Arc<Server>,
    io: I,
    protocol: Option<Protocol>,
    idle: Duration,
    shutdown: Watcher,
) -> Result<(), ConnectionError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let args = &server.args;
    let state =
        crate::conn::Connection::new(idle, args.header_read_timeout, args.response_write_timeout);
    let mut io = crate::conn::Bounded::new(io, state.clone());
    let protocol = match protocol {
        Some(protocol) => protocol,
        None => io.sniff().await?,
    };
    let service = {
        let server = server.clone();
        hyper::service::service_fn(move |req| request::handle(server.clone(), req, state.clone()))
    };
    let io = TokioIo::new(io);
    match protocol {
        Protocol::Http1 => {
            let connection = http1::Builder::new()
                .keep_alive(true)
                .timer(TokioTimer::new())
                .header_read_timeout(args.header_read_timeout)
                .serve_connection(io, service);
            Ok(shutdown.watch(connection).await?)
        }
        Protocol::Http2 => {
            let connection = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .max_concurrent_streams(args.max_concurrent_streams)
                .max_header_list_size(args.max_header_list_size)
                .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESET_STREAMS)
                .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESET_STREAMS)
                .serve_connection(io, service);
            Ok(shutdown.watch(connection).await?)
        }
    }
}
