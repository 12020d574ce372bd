//! One connection: TLS if asked (its handshake within the first idle bound), then HTTP/1.1 with
//! keep-alive, or HTTP/2 by ALPN or by the client's preface (prior knowledge), each request
//! handed to `request`.

use crate::conn::{self, Protocol};
use crate::io::WriteBounded;
use crate::request;
use crate::state::Server;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::Watcher;
use std::sync::Arc;
use std::time::Duration;

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
    let state = conn::Connection::new(idle, args.header_read_timeout, args.response_write_timeout);
    let mut io = conn::Bounded::new(io, state.clone());
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
