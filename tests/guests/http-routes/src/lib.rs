//! A `wasi:http/proxy` with one route per behaviour the http-proxy handler's tests need:
//! echo, chosen status, big bodies both ways, traps before and after the headers, an endless
//! loop, a slow answer, no answer at all, work after the answer, and an outgoing request.
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};
use wasip2::io::streams::StreamError;

struct Routes;

impl wasip2::exports::http::incoming_handler::Guest for Routes {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path_and_query = request.path_with_query().unwrap_or_default();
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query.as_str(), ""));
        match path {
            "/echo" => echo(request, &path_and_query, out),
            "/count" => {
                let body = read_body(&request);
                let sum = body.iter().fold(0u32, |s, b| s.wrapping_add(u32::from(*b)));
                respond(
                    out,
                    200,
                    &[],
                    format!("{} bytes, sum {sum}\n", body.len()).as_bytes(),
                );
            }
            "/big" => big(out, param(query, "mb").unwrap_or(10)),
            "/trap" => core::arch::wasm32::unreachable(),
            "/trap-after-headers" => {
                let response = OutgoingResponse::new(Fields::new());
                let body = response.body().expect("the body is taken once");
                ResponseOutparam::set(out, Ok(response));
                let stream = body.write().expect("the stream is taken once");
                stream
                    .blocking_write_and_flush(b"the beginning, and then ")
                    .expect("written");
                core::arch::wasm32::unreachable()
            }
            "/spin" => {
                // Said once the guest runs: tests wait for it before they count on a guest
                // that spins.
                eprintln!("spinning");
                let mut n = 0u64;
                loop {
                    n = core::hint::black_box(n.wrapping_add(1));
                }
            }
            "/slow" => {
                let ms: u64 = param(query, "ms").unwrap_or(500);
                wasip2::clocks::monotonic_clock::subscribe_duration(ms * 1_000_000).block();
                respond(out, 200, &[], format!("slept {ms} ms\n").as_bytes());
            }
            "/no-response" => drop(out),
            "/after" => {
                // Work after a complete response (its Content-Length sent), as wasi:http
                // allows; the server's log shows whether it ran to its end.
                respond(out, 200, &[("content-length", "5")], b"done\n");
                wasip2::clocks::monotonic_clock::subscribe_duration(200_000_000).block();
                eprintln!("the work after the response is done");
            }
            "/env" => {
                let name = query.strip_prefix("name=").unwrap_or("");
                let value = std::env::var(name).unwrap_or_else(|_| "(unset)".into());
                respond(out, 200, &[], format!("{name}={value}\n").as_bytes());
            }
            "/file" => {
                let path = query.strip_prefix("path=").unwrap_or("");
                match std::fs::read_to_string(path) {
                    Ok(text) => respond(out, 200, &[], text.as_bytes()),
                    Err(e) => respond(out, 404, &[], format!("{e}\n").as_bytes()),
                }
            }
            "/alloc" => {
                let mib: usize = param(query, "mb").unwrap_or(64);
                let block = core::hint::black_box(vec![1u8; mib << 20]);
                respond(
                    out,
                    200,
                    &[],
                    format!("holding {} MiB\n", block.len() >> 20).as_bytes(),
                );
            }
            "/fetch" => fetch(out, query.strip_prefix("url=").unwrap_or("")),
            _ if path.starts_with("/status/") => {
                let code: u16 = path["/status/".len()..].parse().unwrap_or(500);
                respond(out, code, &[], format!("status {code}\n").as_bytes());
            }
            _ => respond(out, 200, &[("x-hello", "worldhost")], b"Hello, world!\n"),
        }
    }
}

fn param<T: std::str::FromStr>(query: &str, name: &str) -> Option<T> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

fn respond(out: ResponseOutparam, status: u16, headers: &[(&str, &str)], text: &[u8]) {
    let list: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect();
    let response = OutgoingResponse::new(Fields::from_list(&list).expect("valid headers"));
    response.set_status_code(status).expect("a valid status");
    let body = response.body().expect("the body is taken once");
    ResponseOutparam::set(out, Ok(response));
    write_all(&body, text);
    OutgoingBody::finish(body, None).expect("the body ends");
}

fn write_all(body: &OutgoingBody, mut bytes: &[u8]) {
    let stream = body.write().expect("the stream is taken once");
    while !bytes.is_empty() {
        // blocking_write_and_flush takes at most 4096 bytes at a time.
        let (chunk, rest) = bytes.split_at(bytes.len().min(4096));
        stream
            .blocking_write_and_flush(chunk)
            .expect("the client reads");
        bytes = rest;
    }
}

fn read_body(request: &IncomingRequest) -> Vec<u8> {
    let body = request.consume().expect("the body is taken once");
    let stream = body.stream().expect("the stream is taken once");
    let mut all = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => all.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                panic!("reading the body: {}", e.to_debug_string())
            }
        }
    }
    all
}

fn echo(request: IncomingRequest, path_and_query: &str, out: ResponseOutparam) {
    let method = match request.method() {
        Method::Get => "GET".to_string(),
        Method::Post => "POST".to_string(),
        Method::Put => "PUT".to_string(),
        Method::Delete => "DELETE".to_string(),
        Method::Other(m) => m,
        other => format!("{other:?}").to_uppercase(),
    };
    let mut text = format!("{method} {path_and_query}\n");
    let mut headers = request.headers().entries();
    headers.sort();
    for (name, value) in headers.iter().filter(|(n, _)| n.starts_with("x-")) {
        text.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value)));
    }
    text.push('\n');
    let mut bytes = text.into_bytes();
    bytes.extend(read_body(&request));
    respond(out, 200, &[("content-type", "text/plain")], &bytes);
}

fn big(out: ResponseOutparam, mib: usize) {
    let response = OutgoingResponse::new(Fields::new());
    let body = response.body().expect("the body is taken once");
    ResponseOutparam::set(out, Ok(response));
    let stream = body.write().expect("the stream is taken once");
    let chunk: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    for _ in 0..(mib << 20) / chunk.len() {
        stream
            .blocking_write_and_flush(&chunk)
            .expect("the client reads");
    }
    drop(stream);
    OutgoingBody::finish(body, None).expect("the body ends");
}

fn fetch(out: ResponseOutparam, url: &str) {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    request.set_scheme(Some(&Scheme::Http)).expect("a scheme");
    request
        .set_authority(Some(authority))
        .expect("an authority");
    request.set_path_with_query(Some(path)).expect("a path");
    match send(request) {
        Ok((status, body)) => {
            let mut text = format!("upstream {status}: ").into_bytes();
            text.extend(body);
            respond(out, 200, &[], &text);
        }
        Err(code) => respond(
            out,
            502,
            &[],
            format!("outgoing request failed: {code:?}\n").as_bytes(),
        ),
    }
}

fn send(request: OutgoingRequest) -> Result<(u16, Vec<u8>), ErrorCode> {
    let future = outgoing_handler::handle(request, None)?;
    future.subscribe().block();
    let response = future
        .get()
        .expect("ready after block")
        .expect("taken once")?;
    let status = response.status();
    let body = response.consume().expect("the body is taken once");
    let stream = body.stream().expect("the stream is taken once");
    let mut all = Vec::new();
    while let Ok(chunk) = stream.blocking_read(64 * 1024) {
        all.extend_from_slice(&chunk);
    }
    Ok((status, all))
}

wasip2::http::proxy::export!(Routes);
