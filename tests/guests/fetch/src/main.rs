//! A command that fetches the `http://` URL in its first argument through
//! `wasi:http/outgoing-handler` and prints `STATUS BODY`; on failure it prints the error code on
//! stderr and exits 1.
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, OutgoingRequest, Scheme};

fn main() {
    let url = std::env::args().nth(1).expect("a URL argument");
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let request = OutgoingRequest::new(Fields::new());
    request.set_scheme(Some(&Scheme::Http)).expect("a scheme");
    request.set_authority(Some(authority)).expect("an authority");
    let path = if path.is_empty() { "/" } else { path };
    request.set_path_with_query(Some(path)).expect("a path");
    let response = outgoing_handler::handle(request, None).and_then(|future| {
        future.subscribe().block();
        future.get().expect("ready").expect("taken once")
    });
    match response {
        Ok(response) => {
            let body = response.consume().expect("the body is taken once");
            let stream = body.stream().expect("the stream is taken once");
            let mut all = Vec::new();
            while let Ok(chunk) = stream.blocking_read(64 * 1024) {
                all.extend_from_slice(&chunk);
            }
            println!("{} {}", response.status(), String::from_utf8_lossy(&all));
        }
        Err(code) => {
            eprintln!("request failed: {code:?}");
            std::process::exit(1);
        }
    }
}
