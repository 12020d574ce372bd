// A wasi:http/handler@0.3.0 guest in JavaScript (componentize-qjs, QuickJS): greets with the
// path, echoes the request body on `/echo` by handing its stream to the response, and throws
// on `/throw` (an exception in the guest is a trap to the host).
import { Fields, Request, Response } from "wasi:http/types@0.3.0";

// QuickJS has no TextEncoder; the greeting is ASCII.
function ascii(text) {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

export const handler = {
  async handle(request) {
    const path = request.getPathWithQuery() ?? "/";
    if (path === "/throw") {
      throw new Error("thrown on purpose");
    }
    if (path === "/echo") {
      const done = wit.Future(wit.Future.RESULT_VOID_ERROR_CODE);
      const [body, trailers] = Request.consumeBody(request, done.readable);
      const [response] = Response.new(new Fields(), body, trailers);
      return response;
    }
    const { readable, writable } = wit.Stream(wit.Stream.U8);
    // componentize-qjs names the trailers' future type this way (`fields` is `OTHER`).
    const trailers = wit.Future(wit.Future.RESULT_OPTION_OTHER_ERROR_CODE);
    const [response] = Response.new(new Fields(), readable, trailers.readable);
    (async () => {
      await writable.writeAll(ascii(`Hello from JavaScript on WASI 0.3! You asked for ${path}\n`));
      writable.drop();
      await trailers.writable.write({ tag: "ok", val: null });
    })();
    return response;
  },
};
