"""A wasi:http/proxy guest in Python: answers every request with a greeting and its path, except
`/spin`, which computes forever."""

import sys

from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        if request.path_with_query() == "/spin":
            # Said once the guest runs: tests wait for it before they count on a guest that
            # spins.
            print("spinning", file=sys.stderr, flush=True)
            while True:
                pass
        text = f"Hello from Python! You asked for {request.path_with_query()}\n".encode()
        response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        with body.write() as stream:
            stream.blocking_write_and_flush(text)
        OutgoingBody.finish(body, None)
