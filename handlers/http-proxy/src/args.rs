//! The http-proxy handler's own flags, and the values they are parsed into: the addresses to
//! listen on and how instances are reused. A leaf: it imports nothing of the crate.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Flags of the `http-proxy` handler.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "HTTP proxy options")]
pub struct HttpProxyArgs {
    /// Address to listen on: `HOST:PORT` (port 0: any free port; the address is printed on
    /// stderr), or `unix:PATH` for a Unix socket. May be repeated. Default: 0.0.0.0:8080,
    /// unless `--systemd-listenfd` gives the sockets.
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    pub addr: Vec<Addr>,

    /// Also serve on the sockets systemd passes (socket activation: `LISTEN_FDS`,
    /// `LISTEN_PID`), TCP or Unix, as wasmtime serve does after 48
    #[arg(long)]
    pub systemd_listenfd: bool,

    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first); needs
    /// `--tls-key`. ALPN offers HTTP/2 and HTTP/1.1.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of `--tls-cert` (PEM: PKCS#8, PKCS#1 or SEC1)
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Reload the component when its file changes: new requests go to the new version once it
    /// has loaded, requests in flight finish on the old one, and a version that fails to load
    /// leaves the old one serving. SIGHUP reloads it too, with or without `--watch`.
    #[arg(long)]
    pub watch: bool,

    /// HTTP/2: streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS);
    /// every stream is a request and counts under `--max-concurrent-requests`
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_concurrent_streams: u32,

    /// HTTP/2: the largest header list a request may send, in bytes (SETTINGS_MAX_HEADER_LIST_SIZE;
    /// larger is refused with 431)
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024)]
    pub max_header_list_size: u32,

    /// Requests handled at once; past it, a request is answered 503 at once
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_concurrent_requests: usize,

    /// HTTP/2: requests one connection may have in flight while more than half the places of
    /// `--max-concurrent-requests` are taken; a stream past it then is refused (RST_STREAM
    /// REFUSED_STREAM, which a client may retry on another connection). Default: a tenth of
    /// `--max-concurrent-requests`, at most `--max-concurrent-streams`
    ///
    /// So that one connection cannot take every place while others wait. With room to spare,
    /// a connection may have as many as `--max-concurrent-streams` (a load balancer's few
    /// connections carry many streams).
    #[arg(long, value_name = "N")]
    pub max_requests_per_connection: Option<usize>,

    /// Connections open at once; past it, new connections wait until one closes
    /// (`--max-connections` is the older spelling)
    #[arg(
        long,
        alias = "max-connections",
        value_name = "N",
        default_value_t = 10_000
    )]
    pub max_concurrent_connections: usize,

    /// How long a client may take to send a request's headers, finish its TLS handshake, or
    /// leave a keep-alive connection (HTTP/2: one with no stream open) idle; past it the
    /// connection is closed. A connection accepted while more than half the connection places
    /// are taken has a tenth of it (at least 1s) until its first request
    ///
    /// Bounds what a client that trickles its headers (slowloris) or opens connections and
    /// sends nothing can hold. wasmtime serve has no such bound.
    #[arg(long, value_name = "DURATION", default_value = "30s",
          value_parser = worldhost_core::settings::duration_parser())]
    pub header_read_timeout: Duration,

    /// How long a client may leave the guest waiting for the next bytes of a request body (a
    /// tenth of it, at least 1s, for a request that comes while more than half the places of
    /// `--max-concurrent-requests` are taken); past it the request is stopped (408 if no
    /// response has begun) and the connection closed
    ///
    /// Bounds what a client that sends its headers and then its body slowly or never (or says
    /// `Expect: 100-continue` and falls silent) can hold: the guest, its instance and its place
    /// under `--max-concurrent-requests` are freed.
    #[arg(long, value_name = "DURATION", default_value = "30s",
          value_parser = worldhost_core::settings::duration_parser())]
    pub body_read_timeout: Duration,

    /// How long a response may wait for the client to read it; past it the connection is
    /// closed (under HTTP/2 too, with its other streams) and the guest stopped
    ///
    /// Bounds what a client that asks for a response and never reads it can hold. A client
    /// that reads, however slowly, is not cut off: the bound is on one wait.
    #[arg(long, value_name = "DURATION", default_value = "30s",
          value_parser = worldhost_core::settings::duration_parser())]
    pub response_write_timeout: Duration,

    /// The slowest a request body may arrive, in bytes a second over the whole body (0: no
    /// bound); slower, the request is stopped as for `--body-read-timeout`
    ///
    /// Counted over the time the guest waited for the body, after a first
    /// `--body-read-timeout` of grace: each 500 bytes that come earn the client another second
    /// (Apache's `RequestReadTimeout body=…,MinRate=500`). Bounds what a client that trickles
    /// its body (a byte every few seconds, each wait short of `--body-read-timeout`) can hold.
    #[arg(long, value_name = "BYTES", default_value_t = 500)]
    pub body_min_rate: u64,

    /// Largest request body, in bytes; a larger one is answered 413 (a chunked one as soon as
    /// it grows past it; if the response has begun by then, it is cut off)
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_request_body_size: u64,

    /// Add a header to every request before the guest sees it: `'name: value'`, or `@FILE`
    /// for one header per line (as in wasmtime serve); a request's own headers of that name
    /// are replaced. May be repeated.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,

    /// With OpenTelemetry on: what a request's W3C trace context (`traceparent`, `tracestate`)
    /// makes of its span: `link` (a trace of the server's own, linked to the client's),
    /// `continue` (the client's trace, its sampling and `tracestate` honoured: for clients you
    /// run), or `ignore`
    #[arg(long, value_name = "HOW", default_value = "link")]
    pub trace_context: ClientTrace,

    /// Begin a graceful shutdown when a connection reaches this address (as in wasmtime
    /// serve), as SIGINT and SIGTERM do
    #[arg(long, value_name = "SOCKADDR")]
    pub shutdown_addr: Option<SocketAddr>,

    /// Write the guest's output lines as they are, without wasmtime's `stdout [ID] :: ` and
    /// `stderr [ID] :: ` prefix (ID: the instance's number, also its `INSTANCE_ID`)
    #[arg(long)]
    pub no_logging_prefix: bool,

    /// Requests one instance serves before it is dropped (as in wasmtime serve): 128 for a
    /// WASI 0.3 service, 1 (a fresh instance per request) for a 0.2 proxy
    #[arg(long, value_name = "N")]
    pub max_instance_reuse_count: Option<usize>,

    /// Requests one instance serves at once (as in wasmtime serve): 16 for a WASI 0.3
    /// service (1 with `-W fuel`: fuel is the instance's, refilled for each request); a 0.2
    /// proxy takes one at a time
    #[arg(long, value_name = "N")]
    pub max_instance_concurrent_reuse_count: Option<usize>,

    /// How long a reused instance waits for another request before it is dropped
    #[arg(long, value_name = "DURATION", default_value = "1s",
          value_parser = worldhost_core::settings::duration_parser())]
    pub idle_instance_timeout: Duration,

    /// How long in-flight requests may run on after SIGINT or SIGTERM
    #[arg(long, value_name = "DURATION", default_value = "10s",
          value_parser = worldhost_core::settings::duration_parser())]
    pub shutdown_grace: Duration,
}

impl HttpProxyArgs {
    /// The requests one HTTP/2 connection may have in flight (`--max-requests-per-connection`).
    pub(crate) fn share(&self) -> usize {
        let streams = usize::try_from(self.max_concurrent_streams).unwrap_or(usize::MAX);
        let tenth = (self.max_concurrent_requests / 10).clamp(1, streams.max(1));
        self.max_requests_per_connection.unwrap_or(tenth).max(1)
    }

    /// How instances are reused, with wasmtime serve's defaults for the component's WASI
    /// version (`p3`): a 0.2 proxy's handler cannot be called twice at once, and with `-W fuel`
    /// (`fuel`) an instance takes one request at a time, refilled for each.
    pub(crate) fn reuse(&self, p3: bool, fuel: bool) -> Reuse {
        let (total, concurrent) = if p3 { (128, 16) } else { (1, 1) };
        Reuse {
            total: self.max_instance_reuse_count.unwrap_or(total).max(1),
            concurrent: match p3 && !fuel {
                true => self
                    .max_instance_concurrent_reuse_count
                    .unwrap_or(concurrent)
                    .max(1),
                false => 1,
            },
            idle: self.idle_instance_timeout,
        }
    }
}

/// An address of `--addr`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Addr {
    Tcp(SocketAddr),
    Unix(PathBuf),
    /// `unix:@NAME`: a socket in Linux's abstract namespace (no file), as systemd and socat
    /// spell it.
    Abstract(String),
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Tcp(addr) => write!(f, "{addr}"),
            Addr::Unix(path) => write!(f, "unix:{}", path.display()),
            Addr::Abstract(name) => write!(f, "unix:@{name}"),
        }
    }
}

/// `--addr`'s parser: `HOST:PORT`, `unix:PATH` or `unix:@NAME`.
pub(crate) fn parse_addr(text: &str) -> Result<Addr, String> {
    if let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() || path == "@" {
            return Err(
                "`unix:` needs a path or an abstract name: `unix:/run/app.sock`, `unix:@app`"
                    .into(),
            );
        }
        if let Some(name) = path.strip_prefix('@') {
            return Ok(Addr::Abstract(name.to_string()));
        }
        return Ok(Addr::Unix(PathBuf::from(path)));
    }
    text.parse().map(Addr::Tcp).map_err(|_| {
        format!(
            "`{text}` is not an address: give `HOST:PORT` (`127.0.0.1:8080`, `[::1]:8080`) or \
             `unix:PATH`"
        )
    })
}

/// How instances are reused: wasmtime serve's flags.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reuse {
    /// Requests an instance takes in all (`--max-instance-reuse-count`).
    pub total: usize,
    /// Requests it takes at once (`--max-instance-concurrent-reuse-count`).
    pub concurrent: usize,
    /// How long it may wait for a request before it is dropped (`--idle-instance-timeout`).
    pub idle: Duration,
}

/// What a server does with a client's W3C trace context (`traceparent`, `tracestate`): a
/// client may say anything there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ClientTrace {
    /// A trace of the server's own for each request, with a link to the client's span: its
    /// sampling flag does not hide the request, and its `tracestate` goes nowhere.
    Link,
    /// The request's span is the child of the client's: its trace, its sampling decision and
    /// its `tracestate` (up to 512 bytes and 32 members, W3C's bounds) go on to the guest's
    /// outgoing requests. For a server whose clients are your own services.
    Continue,
    /// The client's trace context is not read.
    Ignore,
}
