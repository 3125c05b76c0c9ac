"""``wsgiref`` for the matrix: the standard library's server, a thread per request (as its
users run it), serving ``tests.matrix.wsgi_entry:app`` on 127.0.0.1 at the port given."""

from __future__ import annotations

import socketserver
import sys
from wsgiref.simple_server import WSGIServer, make_server

from tests.matrix.wsgi_entry import app


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


if __name__ == "__main__":
    with make_server("127.0.0.1", int(sys.argv[1]), app, ThreadingWSGIServer) as server:
        server.serve_forever()
