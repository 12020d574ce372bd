"""A wasi:http/service@0.3.0 guest in Python (`async def handle`): greets on every path, echoes
the request body on `/echo` by handing its stream to the response, and computes forever on
`/spin`."""

import sys

import componentize_py_async_support
from componentize_py_types import Ok
from wit_world import (
    byte_stream,
    exports,
    result_option_wasi_http_types_fields_wasi_http_types_error_code_future as trailers_future,
    result_unit_wasi_http_types_error_code_future as done_future,
)
from wit_world.imports.wasi_http_types import Fields, Request, Response


def no_trailers():
    _, reader = trailers_future(lambda: Ok(None))
    return reader


class Handler(exports.Handler):
    async def handle(self, request: Request) -> Response:
        path = request.get_path_with_query() or "/"
        if path == "/spin":
            # Said once the guest runs: tests wait for it before they count on a guest that
            # spins.
            print("spinning", file=sys.stderr, flush=True)
            while True:
                pass
        if path == "/echo":
            _, done = done_future(lambda: Ok(None))
            body, trailers = Request.consume_body(request, done)
            response, _ = Response.new(Fields(), body, trailers)
            return response
        text = f"Hello from Python on WASI 0.3! You asked for {path}\n".encode()
        writer, reader = byte_stream()
        response, _ = Response.new(
            Fields.from_list([("content-type", b"text/plain")]), reader, no_trailers()
        )

        async def send():
            with writer:
                await writer.write_all(text)

        componentize_py_async_support.spawn(send())
        return response
