//! OpenTelemetry, configured by the standard variables as Spin and wasmCloud read them:
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (both signals), `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` and
//! `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` (one each), `OTEL_EXPORTER_OTLP_PROTOCOL` (and its
//! per-signal forms: `http/protobuf`, the default, or `http/json`), `OTEL_SERVICE_NAME`
//! (`worldhost` if neither it nor `OTEL_RESOURCE_ATTRIBUTES` names the service),
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS` and
//! `…_TIMEOUT`, the batch and export intervals (`OTEL_BSP_*`, `OTEL_METRIC_EXPORT_INTERVAL`);
//! `OTEL_SDK_DISABLED=true` turns it off. With no endpoint set nothing is sent, nothing is
//! started, and the handlers' one check finds telemetry off.
//!
//! Traces come from `tracing`'s spans (worldhost's own: a request, its instantiation, its
//! outgoing requests, a run) through tracing-opentelemetry; W3C trace context is read from a
//! request's `traceparent` and written into the guest's outgoing requests. Metrics are
//! recorded through [`worldhost_core::telemetry`].

use anyhow::{Result, bail};
use opentelemetry::metrics::{Counter, Histogram, UpDownCounter};
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{KeyValue, global};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_otlp::{MetricExporter, Protocol, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::OnceLock;
use std::time::Duration;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::Registry;
use worldhost_core::telemetry::{GuestFailure, Telemetry};

/// The providers, kept to flush them when a run ends.
struct Providers {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

static PROVIDERS: OnceLock<Providers> = OnceLock::new();

/// The layer that sends worldhost's spans (and its warnings and errors, as span events) as
/// OpenTelemetry traces.
pub(crate) type OtelLayer = Box<dyn Layer<Registry> + Send + Sync>;

fn set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

/// The protocol for a signal: its own variable's, the generic one's, or http/protobuf (the
/// specification's default; the exporter crate would pick JSON since both are built in).
fn protocol(signal_var: &str) -> Protocol {
    let value = std::env::var(signal_var)
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_default();
    match value.trim() {
        "http/json" => Protocol::HttpJson,
        _ => Protocol::HttpBinary,
    }
}

/// Which signals the variables ask for: `(traces, metrics)`, or `None` for none.
fn asked() -> Result<Option<(bool, bool)>> {
    if std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    let both = set("OTEL_EXPORTER_OTLP_ENDPOINT");
    let traces = both || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    let metrics = both || set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
    if !traces && !metrics {
        return Ok(None);
    }
    for var in [
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    ] {
        match std::env::var(var).as_deref().map(str::trim) {
            Err(_) | Ok("" | "http/protobuf" | "http/json") => {}
            Ok("grpc") => bail!(
                "{var}=grpc: worldhost sends OTLP over HTTP only; set it to `http/protobuf` \
                 and point the endpoint at the collector's OTLP/HTTP port (4318 by default)"
            ),
            Ok(other) => bail!(
                "{var}={other} is not an OTLP protocol; set `http/protobuf` (the default) or \
                 `http/json`"
            ),
        }
    }
    Ok(Some((traces, metrics)))
}

/// Starts OpenTelemetry if the variables ask for it (once per process): returns the layer for
/// the subscriber, and installs the meter provider and the handlers' [`Telemetry`] (whose
/// propagator is the only one trace context goes through).
pub(crate) fn start() -> Result<Option<OtelLayer>> {
    let Some((traces, metrics)) = asked()? else {
        return Ok(None);
    };
    if PROVIDERS.get().is_some() {
        return Ok(None);
    }
    // OTLP to an https endpoint: rustls with ring, as the rest of worldhost.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut resource = Resource::builder();
    let named = set("OTEL_SERVICE_NAME")
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|attributes| {
            (attributes.split(','))
                .any(|pair| pair.split('=').next().map(str::trim) == Some("service.name"))
        });
    if !named {
        resource = resource.with_service_name("worldhost");
    }
    let resource = resource.build();
    let cannot = |what: &str, e: &dyn std::fmt::Display| {
        anyhow::anyhow!(
            "cannot set up OpenTelemetry's {what} exporter ({e}); check the OTEL_EXPORTER_OTLP_* \
             variables, or unset them to run without telemetry"
        )
    };
    let tracer = match traces {
        true => {
            let exporter = SpanExporter::builder()
                .with_http()
                .with_protocol(protocol("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
                .build()
                .map_err(|e| cannot("trace", &e))?;
            Some(
                SdkTracerProvider::builder()
                    .with_resource(resource.clone())
                    .with_batch_exporter(exporter)
                    .build(),
            )
        }
        false => None,
    };
    let meter = match metrics {
        true => {
            let exporter = MetricExporter::builder()
                .with_http()
                .with_protocol(protocol("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"))
                .build()
                .map_err(|e| cannot("metric", &e))?;
            let provider = SdkMeterProvider::builder()
                .with_resource(resource)
                .with_periodic_exporter(exporter)
                .build();
            global::set_meter_provider(provider.clone());
            Some(provider)
        }
        false => None,
    };
    let layer = tracer.as_ref().map(|provider| {
        use tracing_subscriber::filter::filter_fn;
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("worldhost"))
            // worldhost's spans, and its warnings and errors as their events.
            .with_filter(filter_fn(|meta| {
                meta.target().starts_with("worldhost")
                    && (meta.is_span() || *meta.level() <= tracing::Level::WARN)
            }));
        Box::new(layer) as OtelLayer
    });
    worldhost_core::telemetry::install(Box::new(Otel::new(meter.is_some())));
    let _ = PROVIDERS.set(Providers { tracer, meter });
    Ok(layer)
}

/// How long the end of a run waits for the collector to take what is buffered, unless a
/// handler set a deadline of its own (a server: what is left of `--shutdown-grace`).
const FLUSH_BOUND: Duration = Duration::from_secs(2);

/// The least a server's flush is given, even past its grace.
const FLUSH_FLOOR: Duration = Duration::from_millis(100);

/// Sends what is buffered: at the end of a run (the process may exit right after), waiting
/// for the collector within a bound: a collector that takes the connection and never answers
/// must not hold the process (the exporter's own timeout, `OTEL_EXPORTER_OTLP_TIMEOUT`, is
/// 10 s a signal). What is not sent by then is dropped, with a warning.
pub(crate) fn flush() {
    let Some(providers) = PROVIDERS.get() else {
        return;
    };
    let bound = worldhost_core::telemetry::flush_deadline().map_or(FLUSH_BOUND, |deadline| {
        deadline
            .saturating_duration_since(std::time::Instant::now())
            .max(FLUSH_FLOOR)
    });
    let (done, flushed) = std::sync::mpsc::channel();
    let flushing = std::thread::Builder::new()
        .name("worldhost-otel-flush".into())
        .spawn(move || {
            let mut failures = Vec::new();
            if let Some(tracer) = &providers.tracer
                && let Err(e) = tracer.force_flush()
            {
                failures.push(format!("cannot send the traces to the OTLP endpoint: {e}"));
            }
            if let Some(meter) = &providers.meter
                && let Err(e) = meter.force_flush()
            {
                failures.push(format!("cannot send the metrics to the OTLP endpoint: {e}"));
            }
            let _ = done.send(failures);
        });
    if flushing.is_err() {
        return;
    }
    match flushed.recv_timeout(bound) {
        Ok(failures) => failures.iter().for_each(|f| tracing::warn!("{f}")),
        Err(_) => tracing::warn!(
            "the OTLP endpoint took no telemetry within {}; what was buffered is dropped",
            humantime::format_duration(bound)
        ),
    }
}

/// A client's headers as the propagator reads them, with a `tracestate` past W3C's bounds (512
/// bytes, 32 members: what a vendor must carry at least) left out: a client's `tracestate` is
/// never carried on unbounded.
struct Bounded<'a>(HeaderExtractor<'a>);

/// W3C trace context's bounds on `tracestate`.
const MAX_TRACESTATE_BYTES: usize = 512;
const MAX_TRACESTATE_MEMBERS: usize = 32;

impl opentelemetry::propagation::Extractor for Bounded<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let value = self.0.get(key)?;
        let too_much = key.eq_ignore_ascii_case("tracestate")
            && (value.len() > MAX_TRACESTATE_BYTES
                || value.split(',').count() > MAX_TRACESTATE_MEMBERS);
        (!too_much).then_some(value)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys()
    }
}

/// The metric instruments (OpenTelemetry's HTTP server conventions, and worldhost's own).
struct Instruments {
    duration: Histogram<f64>,
    active: UpDownCounter<i64>,
    traps: Counter<u64>,
    timeouts: Counter<u64>,
    memory: Histogram<u64>,
}

/// The handlers' telemetry: trace context always, metrics when they are sent.
struct Otel {
    propagator: TraceContextPropagator,
    instruments: Option<Instruments>,
}

impl Otel {
    fn new(metrics: bool) -> Self {
        let instruments = metrics.then(|| {
            let meter = global::meter("worldhost");
            Instruments {
                duration: meter
                    .f64_histogram("http.server.request.duration")
                    .with_unit("s")
                    .with_description("Duration of HTTP server requests, until the response began")
                    .with_boundaries(vec![
                        0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                        10.0,
                    ])
                    .build(),
                active: meter
                    .i64_up_down_counter("http.server.active_requests")
                    .with_unit("{request}")
                    .with_description("Number of HTTP server requests in flight")
                    .build(),
                traps: meter
                    .u64_counter("worldhost.guest.traps")
                    .with_unit("{request}")
                    .with_description("Requests whose guest trapped")
                    .build(),
                timeouts: meter
                    .u64_counter("worldhost.guest.timeouts")
                    .with_unit("{request}")
                    .with_description("Requests whose guest ran past -W timeout")
                    .build(),
                memory: meter
                    .u64_histogram("worldhost.instance.memory")
                    .with_unit("By")
                    .with_description("Linear memory an instance held when it ended")
                    .with_boundaries((16..=32).step_by(2).map(|p| 2f64.powi(p)).collect())
                    .build(),
            }
        });
        Self {
            propagator: TraceContextPropagator::new(),
            instruments,
        }
    }
}

impl Telemetry for Otel {
    fn client_trace(&self, span: &tracing::Span, headers: &http::HeaderMap, continued: bool) {
        if !headers.contains_key("traceparent") {
            return;
        }
        let parent = self.propagator.extract(&Bounded(HeaderExtractor(headers)));
        match continued {
            true => {
                let _ = span.set_parent(parent);
            }
            false => {
                use opentelemetry::trace::{SpanContext, TraceContextExt as _, TraceState};
                let client = parent.span().span_context().clone();
                // Linked by its ids alone: the client's `tracestate` goes nowhere, the
                // collector included.
                if client.is_valid() {
                    span.add_link(SpanContext::new(
                        client.trace_id(),
                        client.span_id(),
                        client.trace_flags(),
                        client.is_remote(),
                        TraceState::default(),
                    ));
                }
            }
        }
    }

    fn propagate(&self, span: &tracing::Span, headers: &mut http::HeaderMap) {
        self.propagator
            .inject_context(&span.context(), &mut HeaderInjector(headers));
    }

    fn request_started(&self) {
        if let Some(i) = &self.instruments {
            i.active.add(1, &[]);
        }
    }

    fn request_ended(&self) {
        if let Some(i) = &self.instruments {
            i.active.add(-1, &[]);
        }
    }

    fn request_answered(&self, method: &'static str, status: u16, seconds: f64, protocol: &str) {
        if let Some(i) = &self.instruments {
            i.duration.record(
                seconds,
                &[
                    KeyValue::new("http.request.method", method),
                    KeyValue::new("http.response.status_code", i64::from(status)),
                    KeyValue::new("network.protocol.version", protocol.to_string()),
                ],
            );
        }
    }

    fn guest_failed(&self, failure: GuestFailure) {
        if let Some(i) = &self.instruments {
            match failure {
                GuestFailure::Trap => i.traps.add(1, &[]),
                GuestFailure::Timeout => i.timeouts.add(1, &[]),
            }
        }
    }

    fn instance_memory(&self, bytes: u64) {
        if let Some(i) = &self.instruments {
            i.memory.record(bytes, &[]);
        }
    }
}
