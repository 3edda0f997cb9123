"""A grpc-core (Python grpcio) server for tests/e2e/grpc.rs.

Serves test.Echo/Unary, ClientStream and ServerStream with no
(de)serializers: messages are raw bytes. Binds 127.0.0.1 on a free port and
prints, one JSON object per line on stdout:
  {"port": N}                         once, when it serves
  {"path": ..., "metadata": [[k, v], ...] (binary -bin values as hex), "messages": [hex, ...],
   "time_remaining": seconds or null}  for every call its handlers ran
grpc-core cancels a call without `te: trailers` before any handler runs, so
such a call prints nothing. Exits when its stdin closes (the test ended).
"""

import json
import sys
import threading
from concurrent import futures

import grpc

_lock = threading.Lock()


def _record(path, context, messages):
    line = json.dumps({
        "path": path,
        "metadata": [[k, v if isinstance(v, str) else v.hex()] for k, v in context.invocation_metadata()],
        "messages": [m.hex() for m in messages],
        "time_remaining": context.time_remaining(),
    })
    with _lock:
        print(line, flush=True)


def unary(request, context):
    _record("/test.Echo/Unary", context, [request])
    return b"grpcio: " + request


def client_stream(requests, context):
    messages = list(requests)
    _record("/test.Echo/ClientStream", context, messages)
    return ("grpcio: %d messages, %d bytes" % (len(messages), sum(map(len, messages)))).encode()


def server_stream(request, context):
    _record("/test.Echo/ServerStream", context, [request])
    for i in range(3):
        yield b"grpcio #%d: " % i + request


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
    }),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(json.dumps({"port": port}), flush=True)
    sys.stdin.read()  # until the test closes our stdin (or dies)
    server.stop(grace=None)


if __name__ == "__main__":
    main()
