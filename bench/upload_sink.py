#!/usr/bin/env python3
"""The primary for the memory check: a minimal HTTP/1.1 keep-alive server on
127.0.0.1:PORT that reads each request's whole body (content-length or
chunked), discards it, and only then answers 200 "ok\\n".

nginx's `return 200` answers before reading the body, and Envoy then resets
the client's upload (downstream_rq_response_before_rq_complete): the 16 MiB
bodies would never stream through Envoy. Standard library only.

  upload_sink.py PORT
"""
import socket
import socketserver
import sys

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\n\r\nok\n"
CHUNK = 1 << 20


class Handler(socketserver.StreamRequestHandler):
    rbufsize = CHUNK

    def discard(self, length):
        while length > 0:
            data = self.rfile.read1(min(length, CHUNK))
            if not data:
                raise ConnectionError("peer closed inside the body")
            length -= len(data)

    def handle(self):
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    continue
                length, chunked, close = 0, False, False
                while True:
                    header = self.rfile.readline(65537)
                    if header in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = header.partition(b":")
                    name, value = name.strip().lower(), value.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"transfer-encoding" and b"chunked" in value:
                        chunked = True
                    elif name == b"connection" and value == b"close":
                        close = True
                if chunked:
                    while True:
                        size = int(self.rfile.readline(1024).split(b";")[0], 16)
                        self.discard(size + 2)
                        if size == 0:
                            break
                else:
                    self.discard(length)
                self.wfile.write(RESPONSE)
                if close:
                    return
        except (ConnectionError, ValueError):
            return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def main():
    with Server(("127.0.0.1", int(sys.argv[1])), Handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
