//! http-hello built against WASI 0.2.4 (`wasi:http/incoming-handler@0.2.4`), where the test
//! middleware is built against 0.2.12: composing them takes the patch releases as one track.
use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Hello;

impl wasi::exports::http::incoming_handler::Guest for Hello {
    fn handle(_request: IncomingRequest, out: ResponseOutparam) {
        let response = OutgoingResponse::new(Fields::new());
        let body = response.body().expect("the body is taken once");
        ResponseOutparam::set(out, Ok(response));
        let stream = body.write().expect("the stream is taken once");
        stream
            .blocking_write_and_flush(b"Hello from WASI 0.2.4!\n")
            .expect("the client reads");
        drop(stream);
        OutgoingBody::finish(body, None).expect("the body ends");
    }
}

wasi::http::proxy::export!(Hello);
