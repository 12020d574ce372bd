//! A WASI 0.3 HTTP middleware (`wasi:http/middleware@0.3.0`): it imports and exports
//! `wasi:http/handler`, answers 401 to a request without `authorization: Bearer open-sesame`,
//! and forwards the others to the handler it imports (the service it is composed with).

wit_bindgen::generate!({
    path: "wit",
    world: "auth",
    with: { "wasi:http/types@0.3.0": wasip3::http::types },
    generate_all,
});

use exports::wasi::http::handler::Guest;
use wasip3::http::types::{ErrorCode, Fields, Request, Response};

struct Auth;

impl Guest for Auth {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let token = request.get_headers().get("authorization");
        if token.iter().any(|value| value.as_slice() == b"Bearer open-sesame") {
            return wasi::http::handler::handle(request).await;
        }
        let headers = Fields::from_list(&[("x-auth".to_string(), b"checked".to_vec())])
            .expect("a valid header");
        let (mut body, contents) = wasip3::wit_stream::new();
        let (_, trailers) = wasip3::wit_future::new(|| Ok(None));
        let (response, _sent) = Response::new(headers, Some(contents), trailers);
        response.set_status_code(401).expect("a valid status");
        wasip3::spawn_local(async move {
            let rest = body.write_all(b"unauthorized\n".to_vec()).await;
            assert!(rest.is_empty(), "the client took the body");
        });
        Ok(response)
    }
}

export!(Auth);
