//! A `wasi:http/proxy` whose code has tail calls (`return_call`, of the tail-call proposal),
//! which Winch, wasmtime's baseline compiler, does not compile: a cold server must start from
//! Cranelift's code instead. Answers every request with whether its path has an even length.
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct TailCall;

impl wasip2::exports::http::incoming_handler::Guest for TailCall {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let parity = if even(core::hint::black_box(path.len() as u32)) {
            "even"
        } else {
            "odd"
        };
        let response = OutgoingResponse::new(Fields::new());
        let body = response.body().expect("the body is taken once");
        ResponseOutparam::set(out, Ok(response));
        let stream = body.write().expect("the stream is taken once");
        stream
            .blocking_write_and_flush(format!("{path} has an {parity} length\n").as_bytes())
            .expect("the client reads");
        drop(stream);
        OutgoingBody::finish(body, None).expect("the body ends");
    }
}

// Each calls the other in tail position; with the tail-call feature, those calls are
// `return_call`s.
#[target_feature(enable = "tail-call")]
#[inline(never)]
fn even(n: u32) -> bool {
    if n == 0 { true } else { odd(core::hint::black_box(n - 1)) }
}

#[target_feature(enable = "tail-call")]
#[inline(never)]
fn odd(n: u32) -> bool {
    if n == 0 { false } else { even(core::hint::black_box(n - 1)) }
}

wasip2::http::proxy::export!(TailCall);
