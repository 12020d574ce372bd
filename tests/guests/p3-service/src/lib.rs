//! A WASI 0.3 HTTP service (`wasi:http/service@0.3.0`, an `async func handle`), built with the
//! wasip3 crate. Its routes:
//!
//! - `/`: "Hello from a WASI 0.3 service!";
//! - `/echo`: the request body, streamed back as it arrives;
//! - `/big?mb=N`: N MiB of `x`, streamed in 64 KiB writes;
//! - `/count`: "request N of instance I": how many requests this instance has served, with
//!   its `INSTANCE_ID` (instances are reused);
//! - `/fetch?url=http://HOST:PORT/PATH`: GETs the URL through `wasi:http/client@0.3.0` and
//!   answers with its status and body, or 502 and the error code;
//! - `/slow?ms=N`: waits N ms on WASI 0.3's clock, then answers;
//! - `/drip?ms=N`: answers at once, writes "first", then "last" N ms later;
//! - `/trailers`: "checked", then the trailer `x-check: ok` (announced by `trailer: x-check`);
//! - `/trap`: reaches `unreachable`; `/spin`: computes for ever; `/sleep`: waits for ever.

use std::sync::atomic::{AtomicU32, Ordering};
use wasip3::clocks::monotonic_clock;
use wasip3::http::types::{ErrorCode, Fields, Method, Request, Response, Scheme};
use wasip3::wit_bindgen::rt::async_support::StreamWriter;
use wasip3::{wit_future, wit_stream};

wasip3::http::service::export!(Service);

struct Service;

/// Requests this instance has begun.
static SERVED: AtomicU32 = AtomicU32::new(0);

/// A response with `status` whose body `write` produces, after `handle` has returned.
fn streamed(
    status: u16,
    write: impl AsyncFnOnce(&mut StreamWriter<u8>) + 'static,
) -> Response {
    streamed_with(status, Fields::new(), None, write)
}

/// [`streamed`], with `headers`, and `trailers` sent after the body.
fn streamed_with(
    status: u16,
    headers: Fields,
    trailers: Option<Fields>,
    write: impl AsyncFnOnce(&mut StreamWriter<u8>) + 'static,
) -> Response {
    let (mut tx, rx) = wit_stream::new();
    let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
    let (response, _sent) = Response::new(headers, Some(rx), trailers_rx);
    response.set_status_code(status).expect("a valid status");
    wasip3::spawn_local(async move {
        write(&mut tx).await;
        drop(tx);
        match trailers {
            Some(trailers) => drop(trailers_tx.write(Ok(Some(trailers))).await),
            None => drop(trailers_tx),
        }
    });
    response
}

fn text(status: u16, body: String) -> Response {
    streamed(status, async move |tx| {
        let rest = tx.write_all(body.into_bytes()).await;
        assert!(rest.is_empty(), "the client took the body");
    })
}

fn query<'a>(path: &'a str, key: &str) -> Option<&'a str> {
    let (_, query) = path.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

async fn fetch(url: &str) -> Result<(u16, Vec<u8>), ErrorCode> {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (_trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
    let (request, _sent) = Request::new(Fields::new(), None, trailers_rx, None);
    request.set_method(&Method::Get).expect("GET");
    request.set_scheme(Some(&Scheme::Http)).expect("http");
    request.set_authority(Some(authority)).expect("an authority");
    let path = if path.is_empty() { "/" } else { path };
    request.set_path_with_query(Some(path)).expect("a path");
    let response = wasip3::http::client::send(request).await?;
    let status = response.get_status_code();
    let (_res_tx, res_rx) = wit_future::new(|| Ok(()));
    let (body, _trailers) = Response::consume_body(response, res_rx);
    Ok((status, body.collect().await))
}

impl wasip3::exports::http::handler::Guest for Service {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let served = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
        let path = request.get_path_with_query().unwrap_or_else(|| "/".into());
        let route = path.split('?').next().unwrap_or("/").to_string();
        Ok(match route.as_str() {
            "/" => text(200, "Hello from a WASI 0.3 service!\n".into()),
            "/echo" => {
                let (_res_tx, res_rx) = wit_future::new(|| Ok(()));
                let (body, trailers) = Request::consume_body(request, res_rx);
                let (response, _sent) = Response::new(Fields::new(), Some(body), trailers);
                response
            }
            "/big" => {
                let mb: usize = query(&path, "mb").and_then(|n| n.parse().ok()).unwrap_or(1);
                streamed(200, async move |tx| {
                    for _ in 0..mb * 16 {
                        let rest = tx.write_all(vec![b'x'; 64 * 1024]).await;
                        if !rest.is_empty() {
                            return;
                        }
                    }
                })
            }
            "/count" => {
                let instance = wasip3::cli::environment::get_environment()
                    .into_iter()
                    .find(|(name, _)| name == "INSTANCE_ID")
                    .map_or("?".to_string(), |(_, id)| id);
                text(200, format!("request {served} of instance {instance}\n"))
            }
            "/fetch" => match fetch(query(&path, "url").expect("?url=")).await {
                Ok((status, body)) => text(
                    200,
                    format!("{status} {}", String::from_utf8_lossy(&body)),
                ),
                Err(code) => text(502, format!("{code:?}\n")),
            },
            "/slow" => {
                let ms: u64 = query(&path, "ms").and_then(|n| n.parse().ok()).unwrap_or(100);
                monotonic_clock::wait_for(ms * 1_000_000).await;
                text(200, format!("waited {ms} ms\n"))
            }
            "/drip" => {
                let ms: u64 = query(&path, "ms").and_then(|n| n.parse().ok()).unwrap_or(100);
                streamed(200, async move |tx| {
                    tx.write_all(b"first\n".to_vec()).await;
                    monotonic_clock::wait_for(ms * 1_000_000).await;
                    tx.write_all(b"last\n".to_vec()).await;
                })
            }
            "/trailers" => {
                let headers = Fields::new();
                headers.append("trailer", b"x-check").expect("a valid header");
                let trailers = Fields::new();
                trailers.append("x-check", b"ok").expect("a valid trailer");
                streamed_with(200, headers, Some(trailers), async |tx| {
                    tx.write_all(b"checked\n".to_vec()).await;
                })
            }
            "/trap" => core::arch::wasm32::unreachable(),
            "/spin" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "/sleep" => {
                monotonic_clock::wait_for(u64::MAX).await;
                text(200, "woke\n".into())
            }
            _ => text(404, format!("no route {route}\n")),
        })
    }
}
