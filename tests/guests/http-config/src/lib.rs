//! A `wasi:http/proxy` that answers `GET /?KEY` with the wasi:config variable KEY and the
//! wasi:keyvalue entry KEY (store `""`): `config=V keyvalue=V`, `<none>` for a missing one.
wit_bindgen::generate!({ path: "../read-config/wit", world: "read-config", generate_all });

use wasip2::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};
use wasi::config::store as config;
use wasi::keyvalue::store as keyvalue;

struct Answer;

impl wasip2::exports::http::incoming_handler::Guest for Answer {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let key = path.split_once('?').map_or("", |(_, key)| key);
        let config = config::get(key).ok().flatten();
        let bucket = keyvalue::open("").expect("the default store opens");
        let stored = bucket.get(key).ok().flatten();
        let stored = stored.map(|v| String::from_utf8_lossy(&v).into_owned());
        let text = format!(
            "config={} keyvalue={}\n",
            config.as_deref().unwrap_or("<none>"),
            stored.as_deref().unwrap_or("<none>")
        );
        let response = OutgoingResponse::new(Fields::new());
        let body = response.body().expect("the body is taken once");
        ResponseOutparam::set(out, Ok(response));
        let stream = body.write().expect("the stream is taken once");
        stream.blocking_write_and_flush(text.as_bytes()).expect("the client reads");
        drop(stream);
        OutgoingBody::finish(body, None).expect("the body ends");
    }
}

wasip2::http::proxy::export!(Answer);
