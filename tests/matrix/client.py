"""A raw HTTP/1.1 client for the matrix: the request goes out byte for byte as written (raw
non-ASCII query bytes, ``%2F``, repeated headers, chunked uploads), and the standard library's
``http.client.HTTPResponse`` parses the answer (chunked, Content-Length, HEAD, 204/304)."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

HOST = "127.0.0.1"


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


@dataclass
class Request:
    method: str
    target: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | Iterable[bytes] | None = None

    def head(self) -> bytes:
        lines = [self.method.encode() + b" " + self.target + b" HTTP/1.1", f"Host: {HOST}".encode()]
        lines += [f"{name}: {value}".encode("latin-1") for name, value in self.headers]
        if isinstance(self.body, bytes):
            lines.append(f"Content-Length: {len(self.body)}".encode())
        elif self.body is not None:
            lines.append(b"Transfer-Encoding: chunked")
        lines.append(b"Connection: close")
        return b"\r\n".join(lines) + b"\r\n\r\n"


def send(sock: socket.socket, request: Request) -> http.client.HTTPResponse:
    """Write ``request`` on ``sock`` and read the answer's head; the body is the caller's.

    The response holds its own reference to the socket's file descriptor: close the response
    too, or the connection stays open after ``sock.close()``."""
    sock.sendall(request.head())
    if isinstance(request.body, bytes):
        sock.sendall(request.body)
    elif request.body is not None:
        for chunk in request.body:
            if chunk:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        sock.sendall(b"0\r\n\r\n")
    response = http.client.HTTPResponse(sock, method=request.method)
    response.begin()
    return response


def fetch(port: int, request: Request, timeout: float = 20) -> Reply:
    """One request on a fresh connection, the whole answer read."""
    with (
        socket.create_connection((HOST, port), timeout=timeout) as sock,
        send(sock, request) as response,
    ):
        return Reply(response.status, response.getheaders(), response.read())


def get(port: int, target: str | bytes, headers: list[tuple[str, str]] | None = None) -> Reply:
    raw = target.encode("latin-1") if isinstance(target, str) else target
    return fetch(port, Request("GET", raw, headers or []))
