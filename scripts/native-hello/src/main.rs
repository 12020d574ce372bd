//! `native-hello ADDR`: answers every request with "Hello, world!\n" and an `x-hello` header,
//! over HTTP/1.1 with keep-alive, on a multi-threaded tokio runtime: what the guest does,
//! without wasm.
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;

#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    eprintln!("Serving HTTP on http://{}/", listener.local_addr().expect("addr"));
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        tokio::spawn(async move {
            let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
                let mut response = Response::new(Full::new(Bytes::from_static(b"Hello, world!\n")));
                response.headers_mut().insert("x-hello", "worldhost".parse().expect("valid"));
                Ok::<_, Infallible>(response)
            });
            let _ = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
