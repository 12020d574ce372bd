//! OpenTelemetry, configured by the standard variables, against a small OTLP/HTTP receiver
//! started here: what arrives is decoded with opentelemetry-proto's own types and checked (the
//! spans of requests, their instantiation and outgoing requests, W3C trace context in and out,
//! the metrics, a run's span), and nothing arrives when the variables do not ask for it.

use crate::server::{Server, get};
use crate::worldhost;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::metric;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use worldhost_test_artifacts as guest;

/// What arrived: each POST's path and body.
type Posts = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// An OTLP/HTTP receiver on 127.0.0.1: every POST's path and body, answered 200.
struct Receiver {
    addr: SocketAddr,
    got: Posts,
}

impl Receiver {
    fn start() -> Receiver {
        Self::on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    fn on(listener: TcpListener) -> Receiver {
        let addr = listener.local_addr().unwrap();
        let got = Posts::default();
        let all = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let all = all.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut stream = stream;
                    // Requests on a keep-alive connection, one after another.
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                        let mut length = 0;
                        loop {
                            let mut header = String::new();
                            reader.read_line(&mut header).unwrap();
                            let header = header.trim_end();
                            if header.is_empty() {
                                break;
                            }
                            let (name, value) = header.split_once(':').unwrap();
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap();
                            }
                        }
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).unwrap();
                        all.lock().unwrap().push((path, body));
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\n\
                              content-length: 0\r\n\r\n",
                        );
                    }
                });
            }
        });
        Receiver { addr, got }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything that arrived at `path`.
    fn bodies(&self, path: &str) -> Vec<Vec<u8>> {
        let got = self.got.lock().unwrap();
        got.iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// The spans' batches that arrived, each with its resource.
    fn resource_spans(&self) -> Vec<opentelemetry_proto::tonic::trace::v1::ResourceSpans> {
        self.bodies("/v1/traces")
            .iter()
            .flat_map(|body| {
                ExportTraceServiceRequest::decode(&body[..])
                    .unwrap()
                    .resource_spans
            })
            .collect()
    }

    fn spans(&self) -> Vec<Span> {
        (self.resource_spans().into_iter())
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .collect()
    }

    fn service_names(&self) -> Vec<String> {
        (self.resource_spans().into_iter())
            .filter_map(|r| r.resource)
            .filter_map(|r| text(&r.attributes, "service.name"))
            .collect()
    }

    /// The last value each metric had, by name: a counter's sum, a histogram's count.
    fn metrics(&self) -> std::collections::BTreeMap<String, f64> {
        let mut seen = std::collections::BTreeMap::new();
        for body in self.bodies("/v1/metrics") {
            let request = ExportMetricsServiceRequest::decode(&body[..]).unwrap();
            for metric in request
                .resource_metrics
                .into_iter()
                .flat_map(|r| r.scope_metrics)
                .flat_map(|s| s.metrics)
            {
                let value = match metric.data {
                    Some(metric::Data::Sum(sum)) => sum
                        .data_points
                        .iter()
                        .map(|p| match p.value {
                            Some(
                                opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(n),
                            ) => n as f64,
                            Some(
                                opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsDouble(x),
                            ) => x,
                            None => 0.0,
                        })
                        .sum(),
                    Some(metric::Data::Histogram(h)) => {
                        h.data_points.iter().map(|p| p.count as f64).sum()
                    }
                    _ => 0.0,
                };
                seen.insert(metric.name, value);
            }
        }
        seen
    }

    /// Waits (10 s at most) until `ready` holds of what arrived.
    fn wait_until(&self, what: &str, ready: impl Fn(&Receiver) -> bool) {
        let began = Instant::now();
        while !ready(self) {
            assert!(
                began.elapsed() < Duration::from_secs(10),
                "{what} did not arrive; got {:?}",
                self.got
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(p, b)| (p.clone(), b.len()))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attributes.iter().find(|a| a.key == key)?.value.as_ref()? {
        AnyValue {
            value: Some(any_value::Value::StringValue(s)),
        } => Some(s.clone()),
        AnyValue {
            value: Some(any_value::Value::IntValue(n)),
        } => Some(n.to_string()),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The variables that send both signals to `receiver` at once, with short intervals.
fn otel_env(receiver: &Receiver) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_SERVICE_NAME", "test-service".into()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200".into()),
    ]
}

/// A server that answers `ok` and keeps each request's head.
fn upstream() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let kept = heads.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            kept.lock().unwrap().push(head.to_lowercase());
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    (addr, heads)
}

fn request(addr: SocketAddr, path: &str, traceparent: &str) -> (u16, String) {
    let mut response = crate::server::client()
        .get(&format!("http://{addr}{path}"))
        .header("traceparent", traceparent)
        .call()
        .unwrap();
    let body = response.body_mut().read_to_string().unwrap();
    (response.status().as_u16(), body)
}

#[test]
fn a_server_sends_request_spans_with_trace_context_and_its_metrics() {
    let receiver = Receiver::start();
    let (up, heads) = upstream();
    let env = otel_env(&receiver);
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, Path::new(v))).collect();
    let allow = up.to_string();
    let mut server = Server::start_with_env(
        &env,
        "serve",
        &[
            "--allow-outgoing",
            &allow,
            "--trace-context",
            "continue",
            "-W",
            "timeout=1s",
            guest::HTTP_ROUTES,
        ],
    );
    let addr = server.addr;
    let (a, b) = (
        "0af7651916cd43dd8448eb211c80319c",
        "4bf92f3577b34da6a3ce929d0e0e4736",
    );
    assert_eq!(
        request(addr, "/status/201", &format!("00-{a}-b7ad6b7169203331-01")),
        (201, "status 201\n".into())
    );
    let fetched = request(
        addr,
        &format!("/fetch?url=http://{up}/x"),
        &format!("00-{b}-00f067aa0ba902b7-01"),
    );
    assert_eq!(fetched.0, 200, "{}", fetched.1);
    assert_eq!(get(&server.url("/trap")).0, 500);
    assert_eq!(get(&server.url("/slow?ms=3000")).0, 504);
    // A client that goes away before its answer: its request is no longer in flight.
    let mut gone = std::net::TcpStream::connect(addr).unwrap();
    gone.write_all(b"GET /slow?ms=800 HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(gone);
    std::thread::sleep(Duration::from_millis(800));
    receiver.wait_until("the metrics of four requests", |r| {
        r.metrics()
            .get("http.server.request.duration")
            .is_some_and(|&n| n >= 4.0)
    });
    assert_eq!(server.stop("TERM").code(), Some(0));
    receiver.wait_until("the request spans", |r| {
        r.spans().iter().filter(|s| s.kind == 2).count() >= 4
    });

    let spans = receiver.spans();
    let server_span = |trace: &str| {
        spans
            .iter()
            .find(|s| s.kind == 2 && hex(&s.trace_id) == trace)
            .unwrap_or_else(|| panic!("no server span in trace {trace}: {spans:#?}"))
    };
    // The client's traceparent is the request span's parent.
    let first = server_span(a);
    assert_eq!(hex(&first.parent_span_id), "b7ad6b7169203331");
    assert_eq!(first.name, "GET");
    let attr = |span: &Span, key| text(&span.attributes, key);
    assert_eq!(attr(first, "http.request.method").as_deref(), Some("GET"));
    assert_eq!(
        attr(first, "http.response.status_code").as_deref(),
        Some("201")
    );
    assert_eq!(attr(first, "url.path").as_deref(), Some("/status/201"));
    assert_eq!(
        attr(first, "network.protocol.version").as_deref(),
        Some("1.1")
    );
    // Its instantiation is its child.
    assert!(
        spans.iter().any(|s| s.name == "instantiate"
            && hex(&s.trace_id) == a
            && s.parent_span_id == first.span_id),
        "no instantiate span under the request"
    );
    // The outgoing request is a client span in the second trace, and its traceparent went out.
    let fetch = server_span(b);
    let client = spans
        .iter()
        .find(|s| s.kind == 3 && hex(&s.trace_id) == b)
        .expect("a client span for the outgoing request");
    assert_eq!(client.parent_span_id, fetch.span_id);
    assert_eq!(
        attr(client, "http.response.status_code").as_deref(),
        Some("200")
    );
    let heads = heads.lock().unwrap();
    let sent = heads
        .iter()
        .find_map(|h| h.lines().find(|l| l.starts_with("traceparent:")))
        .expect("the outgoing request carried a traceparent");
    assert!(
        sent.contains(&format!("00-{b}-{}-01", hex(&client.span_id))),
        "{sent}"
    );
    // Failures are named.
    let failed: Vec<_> = spans
        .iter()
        .filter(|s| s.kind == 2)
        .filter_map(|s| {
            Some((
                attr(s, "http.response.status_code")?,
                attr(s, "error.type")?,
            ))
        })
        .collect();
    assert!(
        failed.contains(&("500".into(), "trap".into())),
        "{failed:?}"
    );
    assert!(
        failed.contains(&("504".into(), "timeout".into())),
        "{failed:?}"
    );
    assert!(receiver.service_names().iter().all(|n| n == "test-service"));

    let metrics = receiver.metrics();
    for name in [
        "http.server.active_requests",
        "worldhost.guest.traps",
        "worldhost.guest.timeouts",
        "worldhost.instance.memory",
    ] {
        assert!(metrics.contains_key(name), "no {name}: {metrics:?}");
    }
    assert_eq!(metrics["http.server.active_requests"], 0.0, "{metrics:?}");
    assert_eq!(metrics["worldhost.guest.traps"], 1.0);
    assert_eq!(metrics["worldhost.guest.timeouts"], 1.0);
    assert!(metrics["worldhost.instance.memory"] >= 3.0, "{metrics:?}");
}

#[test]
fn a_clients_trace_context_is_linked_by_default_and_its_tracestate_bounded() {
    let receiver = Receiver::start();
    let (up, heads) = upstream();
    let env = otel_env(&receiver);
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, Path::new(v))).collect();
    let allow = up.to_string();
    // By default: a client that says "not sampled" hides nothing, and its span is a link.
    let mut server = Server::start_with_env(&env, "serve", &[guest::HTTP_ROUTES]);
    let client_trace = "0af7651916cd43dd8448eb211c80319c";
    let unsampled = format!("00-{client_trace}-b7ad6b7169203331-00");
    assert_eq!(request(server.addr, "/status/201", &unsampled).0, 201);
    assert_eq!(server.stop("TERM").code(), Some(0));
    receiver.wait_until("the request's span", |r| {
        r.spans().iter().any(|s| s.kind == 2)
    });
    let spans = receiver.spans();
    let span = spans.iter().find(|s| s.kind == 2).unwrap();
    assert_ne!(
        hex(&span.trace_id),
        client_trace,
        "the client's trace was followed"
    );
    assert!(span.parent_span_id.is_empty(), "{span:?}");
    assert!(
        span.links
            .iter()
            .any(|l| hex(&l.trace_id) == client_trace && hex(&l.span_id) == "b7ad6b7169203331"),
        "no link to the client's span: {span:?}"
    );
    // Continued: a `tracestate` past W3C's bounds is not carried on to the guest's requests.
    let server = Server::start_with_env(
        &env,
        "serve",
        &[
            "--trace-context",
            "continue",
            "--allow-outgoing",
            &allow,
            guest::HTTP_ROUTES,
        ],
    );
    let huge: Vec<String> = (0..400).map(|i| format!("v{i}=abcdefghij")).collect();
    let mut response = crate::server::client()
        .get(&format!("http://{}/fetch?url=http://{up}/x", server.addr))
        .header(
            "traceparent",
            &format!("00-{client_trace}-b7ad6b7169203331-01"),
        )
        .header("tracestate", &huge.join(","))
        .call()
        .unwrap();
    assert_eq!(response.status(), 200);
    let _ = response.body_mut().read_to_string();
    let heads = heads.lock().unwrap();
    let head = heads.last().expect("the outgoing request arrived");
    assert!(head.contains(client_trace), "{head}");
    assert!(
        !head.contains("v399="),
        "the client's tracestate went on: {head}"
    );
}

#[test]
fn a_run_is_a_span_with_its_exit_status() {
    let receiver = Receiver::start();
    let mut run = worldhost();
    for (name, value) in otel_env(&receiver) {
        run = run.env(name, value);
    }
    run.args(["run", guest::EXIT_CODE, "3"])
        .run()
        .code(1)
        .stdout("exiting with 3\n");
    let spans = receiver.spans();
    let span = spans
        .iter()
        .find(|s| s.name == "worldhost run")
        .unwrap_or_else(|| panic!("no run span: {spans:#?}"));
    assert_eq!(
        text(&span.attributes, "process.exit.code").as_deref(),
        Some("1")
    );
    assert_eq!(
        text(&span.attributes, "worldhost.component").as_deref(),
        Some("exit-code.wasm")
    );
    assert_eq!(
        text(&span.attributes, "worldhost.handler").as_deref(),
        Some("command")
    );
}

#[test]
fn nothing_is_sent_unless_the_variables_ask() {
    // OTEL_SDK_DISABLED wins over an endpoint.
    let receiver = Receiver::start();
    worldhost()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_SDK_DISABLED", "true")
        .args(["run", guest::HELLO])
        .run()
        .success();
    std::thread::sleep(Duration::from_millis(300));
    assert!(receiver.got.lock().unwrap().is_empty());
    // With no variable, nothing goes to the default endpoint either (if this test can hold
    // its port).
    if let Ok(listener) = TcpListener::bind("127.0.0.1:4318") {
        let default = Receiver::on(listener);
        worldhost().args(["run", guest::HELLO]).run().success();
        std::thread::sleep(Duration::from_millis(300));
        assert!(default.got.lock().unwrap().is_empty());
    }
    // A protocol worldhost does not speak is said before anything runs.
    worldhost()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .args(["run", guest::HELLO])
        .run()
        .code(1)
        .stdout("")
        .one_paragraph_error()
        .stderr_has("OTEL_EXPORTER_OTLP_PROTOCOL=grpc")
        .stderr_has("http/protobuf");
}
