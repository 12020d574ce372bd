//! The smallest `wasi:http/proxy`: answers every request with a greeting and a header of its
//! own. The benchmark's guest.
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Hello;

impl wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(_request: IncomingRequest, out: ResponseOutparam) {
        let headers = Fields::from_list(&[("x-hello".to_string(), b"worldhost".to_vec())])
            .expect("a valid header");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("the body is taken once");
        ResponseOutparam::set(out, Ok(response));
        let stream = body.write().expect("the stream is taken once");
        stream
            .blocking_write_and_flush(b"Hello, world!\n")
            .expect("the client reads");
        drop(stream);
        OutgoingBody::finish(body, None).expect("the body ends");
    }
}

wasip2::http::proxy::export!(Hello);
