//! A WASI 0.2 HTTP middleware, the page's second tutorial: it imports and exports
//! `wasi:http/incoming-handler`, answers 401 to a request without `authorization: Bearer
//! open-sesame`, and forwards the others to the handler it imports (the app it is composed
//! with), adding nothing; its own mark is `x-auth: checked` on the 401.

wit_bindgen::generate!({ path: "wit", world: "middleware", generate_all });

use exports::wasi::http::incoming_handler::Guest;
use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

struct Auth;

impl Guest for Auth {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let token = request.headers().get("authorization");
        if token.iter().any(|value| value.as_slice() == b"Bearer open-sesame") {
            wasi::http::incoming_handler::handle(request, out);
            return;
        }
        let headers = Fields::from_list(&[("x-auth".to_string(), b"checked".to_vec())])
            .expect("a valid header");
        let response = OutgoingResponse::new(headers);
        response.set_status_code(401).expect("a valid status");
        let body = response.body().expect("the body is taken once");
        ResponseOutparam::set(out, Ok(response));
        let stream = body.write().expect("the stream is taken once");
        stream
            .blocking_write_and_flush(b"unauthorized\n")
            .expect("the client reads");
        drop(stream);
        OutgoingBody::finish(body, None).expect("the body ends");
    }
}

export!(Auth);
