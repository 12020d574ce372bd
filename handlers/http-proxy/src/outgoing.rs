//! Outgoing requests from the guest (`wasi:http/outgoing-handler`): denied unless the host is
//! on the allow-list of `--allow-outgoing`; allowed ones are sent by wasmtime-wasi-http's own
//! client.

use http_body_util::BodyExt;
use hyper::http;
use std::future::Future;
use std::sync::Arc;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// The allow-list, shared by every request's store.
#[derive(Clone, Debug, Default)]
pub(crate) struct OutgoingPolicy {
    allowed: Arc<Vec<String>>,
}

impl OutgoingPolicy {
    pub(crate) fn new(allowed: Vec<String>) -> Self {
        Self {
            allowed: Arc::new(
                allowed
                    .into_iter()
                    .map(|h| h.to_ascii_lowercase())
                    .collect(),
            ),
        }
    }

    /// Whether a request to this URI may go out: `*`, the host, or `host:port` is listed.
    fn permits(&self, uri: &hyper::Uri) -> bool {
        let Some(host) = uri.host() else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        let port = uri.port_u16().or(match uri.scheme_str() {
            Some("https") => Some(443),
            _ => Some(80),
        });
        let host_port = port.map(|p| format!("{host}:{p}"));
        self.allowed
            .iter()
            .any(|a| a == "*" || *a == host || Some(a) == host_port.as_ref())
    }
}

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

impl WasiHttpHooks for OutgoingPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        drop(fut);
        if !self.permits(request.uri()) {
            tracing::warn!(uri = %request.uri(), "outgoing request denied (see --allow-outgoing)");
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports_are_matched() {
        let policy = OutgoingPolicy::new(vec!["Example.com".into(), "127.0.0.1:8081".into()]);
        assert!(policy.permits(&"http://example.com/x".parse().unwrap()));
        assert!(policy.permits(&"https://EXAMPLE.com:8443/".parse().unwrap()));
        assert!(policy.permits(&"http://127.0.0.1:8081/".parse().unwrap()));
        assert!(!policy.permits(&"http://127.0.0.1:8082/".parse().unwrap()));
        assert!(!policy.permits(&"http://evil.test/".parse().unwrap()));
        assert!(OutgoingPolicy::new(vec!["*".into()]).permits(&"http://a.b/".parse().unwrap()));
        assert!(!OutgoingPolicy::default().permits(&"http://a.b/".parse().unwrap()));
    }
}
