//! Outgoing HTTP requests from a guest, a server's or a command's (`-S http`): denied unless
//! the host is on the allow-list of `--allow-outgoing`; allowed ones are sent by
//! wasmtime-wasi-http's own client, each in a span of its own (a child of the request's when
//! the guest runs in one), whose W3C trace context goes out in the request's `traceparent` when
//! telemetry is on.

use http_body_util::BodyExt;
use hyper::http;
use std::future::Future;
use std::sync::Arc;
use tracing::Instrument as _;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// The allow-list, shared by every request's store.
#[derive(Clone, Debug, Default)]
pub struct OutgoingPolicy {
    allowed: Arc<Vec<Allowed>>,
    /// `-S http-outgoing-body-buffer-chunks`.
    body_buffer_chunks: Option<usize>,
    /// `-S http-outgoing-body-chunk-size`.
    body_chunk_size: Option<usize>,
}

/// One `--allow-outgoing` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Allowed {
    /// `*`: any host, any port.
    Anything,
    /// A host (lowercase, an IPv6 address in brackets) and which of its ports.
    Host(String, Ports),
}

/// The ports of an allowed host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ports {
    /// No port given: the scheme's own (80 for http, 443 for https), as Spin's
    /// `allowed_outbound_hosts` reads a URL without a port.
    Default,
    /// `HOST:PORT`.
    Exactly(u16),
    /// `HOST:*`.
    Any,
}

impl OutgoingPolicy {
    /// The policy of these `--allow-outgoing` entries; an entry that does not parse is an error
    /// that says what it should look like.
    pub fn new(entries: &[String]) -> anyhow::Result<Self> {
        let allowed = entries
            .iter()
            .map(|entry| parse_entry(entry))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            allowed: Arc::new(allowed),
            ..Self::default()
        })
    }

    /// With the outgoing body's buffering of `-S http-outgoing-body-buffer-chunks` and
    /// `-S http-outgoing-body-chunk-size` (wasmtime's defaults where `None`).
    pub fn with_body_buffering(mut self, chunks: Option<usize>, chunk_size: Option<usize>) -> Self {
        self.body_buffer_chunks = chunks;
        self.body_chunk_size = chunk_size;
        self
    }

    /// Whether a request to this URI may go out: `*` is listed, or its host with its port (an
    /// entry without a port allows the scheme's). An authority that holds userinfo
    /// (`user@host`) is refused: what the connector would reach is then not what was checked.
    fn permits(&self, uri: &hyper::Uri) -> bool {
        let Some(authority) = uri.authority() else {
            return false;
        };
        if authority.as_str().contains('@') {
            return false;
        }
        let host = authority.host().to_ascii_lowercase();
        let default_port = match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        };
        let port = authority.port_u16().unwrap_or(default_port);
        self.allowed.iter().any(|allowed| match allowed {
            Allowed::Anything => true,
            Allowed::Host(name, ports) => {
                *name == host
                    && match ports {
                        Ports::Default => port == default_port,
                        Ports::Exactly(p) => port == *p,
                        Ports::Any => true,
                    }
            }
        })
    }
}

/// `*`, `HOST`, `HOST:PORT` or `HOST:*` (an IPv6 address in brackets: `[::1]:8080`).
fn parse_entry(entry: &str) -> anyhow::Result<Allowed> {
    let lower = entry.trim().to_ascii_lowercase();
    if lower == "*" {
        return Ok(Allowed::Anything);
    }
    let (host, port) = match lower.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((address, port)) => (format!("[{address}]"), port.strip_prefix(':')),
            None => (lower.clone(), None),
        },
        None => match lower.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (lower.clone(), None),
        },
    };
    let ports = match port {
        None => Ports::Default,
        Some("*") => Ports::Any,
        Some(port) => port.parse().map(Ports::Exactly).map_err(|_| {
            anyhow::anyhow!(
                "`--allow-outgoing {entry}`: `{port}` is not a port; write `HOST` (its scheme's \
                 port, 80 or 443), `HOST:PORT`, `HOST:*` (any port) or `*` (anything)"
            )
        })?,
    };
    if host.contains('*') {
        anyhow::bail!(
            "`--allow-outgoing {entry}`: a host has no wildcards here; list each host, or give \
             `*` alone for any"
        );
    }
    let bare_ipv6 = !host.starts_with('[') && host.contains(':');
    if host.is_empty() || bare_ipv6 || host.contains(['/', '@']) {
        anyhow::bail!(
            "`--allow-outgoing {entry}` is not a host; write `HOST`, `HOST:PORT`, `HOST:*` or \
             `*` (an IPv6 address in brackets: `[::1]:8080`)"
        );
    }
    Ok(Allowed::Host(host, ports))
}

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

impl WasiHttpHooks for OutgoingPolicy {
    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        (self.body_buffer_chunks)
            .unwrap_or(wasmtime_wasi_http::p2::DEFAULT_OUTGOING_BODY_BUFFER_CHUNKS)
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        (self.body_chunk_size).unwrap_or(wasmtime_wasi_http::p2::DEFAULT_OUTGOING_BODY_CHUNK_SIZE)
    }

    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        drop(fut);
        // OpenTelemetry's HTTP client conventions: the span is named by the method.
        let method = crate::telemetry::method_name(request.method());
        let span = tracing::trace_span!(
            "outgoing request",
            otel.name = if method == "_OTHER" { "HTTP" } else { method },
            otel.kind = "client",
            http.request.method = method,
            url.full = crate::telemetry::redacted(request.uri()),
            server.address = request.uri().host().unwrap_or(""),
            http.response.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
        );
        if !self.permits(request.uri()) {
            tracing::warn!(
                uri = %crate::telemetry::redacted(request.uri()),
                "outgoing request denied (`--allow-outgoing HOST[:PORT]` allows a host; an \
                 address with a user name, `user@host`, is never allowed)"
            );
            span.record("error.type", "denied");
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        if let Some(telemetry) = crate::telemetry::get() {
            telemetry.propagate(&span, request.headers_mut());
        }
        let traced = span.clone();
        Box::new(
            async move {
                let sent = wasmtime_wasi_http::default_send_request(request, options).await;
                match &sent {
                    Ok((response, _)) => {
                        traced.record("http.response.status_code", response.status().as_u16());
                    }
                    Err(e) => {
                        traced.record("error.type", tracing::field::debug(e));
                    }
                }
                let (response, io) = sent?;
                Ok((
                    response.map(BodyExt::boxed_unsync),
                    Box::new(io) as Box<dyn Future<Output = _> + Send>,
                ))
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> OutgoingPolicy {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        OutgoingPolicy::new(&entries).unwrap()
    }

    fn permits(policy: &OutgoingPolicy, uri: &str) -> bool {
        policy.permits(&uri.parse().unwrap())
    }

    #[test]
    fn hosts_and_ports_are_matched() {
        let p = policy(&["Example.com", "127.0.0.1:8081", "api.test:*", "[::1]:9000"]);
        assert!(permits(&p, "http://example.com/x"));
        assert!(permits(&p, "https://EXAMPLE.com/"));
        assert!(permits(&p, "http://example.com:80/"));
        // Without a port, an entry allows the scheme's own only.
        assert!(!permits(&p, "https://example.com:8443/"));
        assert!(!permits(&p, "http://example.com:443/"));
        assert!(permits(&p, "http://127.0.0.1:8081/"));
        assert!(!permits(&p, "http://127.0.0.1:8082/"));
        assert!(permits(&p, "http://api.test:1234/"));
        assert!(permits(&p, "http://[::1]:9000/"));
        assert!(!permits(&p, "http://[::1]:9001/"));
        assert!(!permits(&p, "http://evil.test/"));
        assert!(permits(&policy(&["*"]), "http://a.b:5/"));
        assert!(!permits(&OutgoingPolicy::default(), "http://a.b/"));
    }

    #[test]
    fn userinfo_is_refused_even_for_an_allowed_host() {
        let p = policy(&["127.0.0.1:8081", "*"]);
        assert!(!permits(&p, "http://x@127.0.0.1:8081/"));
        assert!(!permits(&p, "http://evil.test:80@127.0.0.1:8081/"));
    }

    #[test]
    fn entries_that_are_not_hosts_are_errors() {
        for bad in ["host:eighty", "", "a/b", "u@h", "::1", "*.example.com"] {
            assert!(OutgoingPolicy::new(&[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
