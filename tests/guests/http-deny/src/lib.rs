//! A second WASI 0.2 HTTP middleware, for chains: it answers 403 to every path under
//! `/admin` and forwards the others to the handler it imports. In front of `http-auth`, an
//! unauthenticated `/admin` gets its 403; behind it, auth's 401: the order of `--middleware`
//! shows.

wit_bindgen::generate!({ path: "../http-auth/wit", world: "middleware", generate_all });

use exports::wasi::http::incoming_handler::Guest;
use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

struct Deny;

impl Guest for Deny {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        if !path.starts_with("/admin") {
            wasi::http::incoming_handler::handle(request, out);
            return;
        }
        let response = OutgoingResponse::new(Fields::new());
        response.set_status_code(403).expect("a valid status");
        let body = response.body().expect("the body is taken once");
        ResponseOutparam::set(out, Ok(response));
        let stream = body.write().expect("the stream is taken once");
        stream
            .blocking_write_and_flush(b"forbidden\n")
            .expect("the client reads");
        drop(stream);
        OutgoingBody::finish(body, None).expect("the body ends");
    }
}

export!(Deny);
