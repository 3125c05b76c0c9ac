"""Zero-copy files through AsgiToWsgi: a FastAPI ``FileResponse`` on gunicorn gthread.

    .venv/bin/python -m bench.pathsend                 # about a minute
    .venv/bin/python -m bench.pathsend --quick         # smoke run
    .venv/bin/python -m bench.pathsend --output bench/results/pathsend.md

One app (``tests/apps_pathsend.py``: ``FileResponse`` of a ``--mib`` MiB file), three servers,
each ``gunicorn -k gthread --threads 4 --workers 1`` on 127.0.0.1 with an ephemeral port:

- bridge: ``AsgiToWsgi`` offers ``http.response.pathsend``; Starlette sends it; gunicorn gets
  its own ``wsgi.file_wrapper`` back and ``sendfile()``s the file;
- bridge, ``--no-sendfile``: the same hand-off, gunicorn then reads the file in 64 KiB blocks
  (what the hand-off alone saves: no byte crosses the event loop);
- bridge without pathsend (a middleware takes it out of the scope): the file streams through
  bridge's loop as 64 KiB body messages, in the server thread itself;
- a2wsgi: no pathsend; Starlette reads the file in anyio's worker thread, sends 64 KiB body
  messages through the loop, a2wsgi hands them to the server thread.

The client is this process: ``--connections`` keep-alive connections in threads, raw sockets,
each response's status and exact length checked (and one response of each server compared
byte for byte with the file). Per cell: ``--requests`` downloads at the most, ``--seconds`` at
the most; ``--rounds`` interleaved rounds, the best kept. Reported: downloads/s, MiB/s, the
gunicorn worker's CPU time per download (psutil, user + system), and the ``os.sendfile`` calls
and bytes the worker made (counted by ``tests/gunicorn_count_sendfile.py``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import platform
import socket
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import Server, serve  # noqa: E402

MiB = 1024 * 1024


def gunicorn(app: str, *extra: str) -> list[str]:
    return [
        *("gunicorn", "--bind=127.0.0.1:{port}", "--workers=1", "--worker-class=gthread"),
        *("--threads=4", "--log-level=warning", "--no-control-socket"),
        *("-c", "tests/gunicorn_count_sendfile.py", *extra, app),
    ]


CELLS = {
    "bridge (pathsend → sendfile)": gunicorn("tests.apps_pathsend:app"),
    "bridge, gunicorn --no-sendfile": gunicorn("tests.apps_pathsend:app", "--no-sendfile"),
    "bridge, no pathsend (streams through its loop)": gunicorn("tests.apps_pathsend:streaming_app"),
    "a2wsgi (streams through the loop)": gunicorn("tests.apps_pathsend:a2wsgi_app()"),
}


@dataclass
class Cell:
    name: str
    server: Server
    worker: psutil.Process
    rates: list[float] = field(default_factory=list)
    cpu_per: list[float] = field(default_factory=list)  # worker CPU seconds per download
    sendfile: dict[str, int] = field(default_factory=dict)


def download(port: int, count: int, size: int, deadline: float) -> int:
    """``count`` GETs of /file on one keep-alive connection (until ``deadline``): each one's
    status and exact length checked; the body is read into one reused buffer."""
    buffer = memoryview(bytearray(MiB))
    done = 0
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        for _ in range(count):
            if time.monotonic() > deadline:
                break
            sock.sendall(b"GET /file HTTP/1.1\r\nHost: bench\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    raise RuntimeError("the server closed the connection")
                head += chunk
            head, _, rest = head.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200") or f"content-length: {size}".encode() not in (
                head.lower()
            ):
                raise RuntimeError(f"unexpected response: {head[:300]!r}")
            left = size - len(rest)
            while left > 0:
                got = sock.recv_into(buffer, min(left, len(buffer)))
                if not got:
                    raise RuntimeError("the body ended early")
                left -= got
            done += 1
    return done


def measure(cell: Cell, size: int, requests: int, seconds: float, connections: int) -> None:
    download(cell.server.port, 1, size, time.monotonic() + 60)  # warm-up
    cpu = cell.worker.cpu_times()
    started = time.monotonic()
    deadline = started + seconds
    share = -(-requests // connections)
    with concurrent.futures.ThreadPoolExecutor(connections) as pool:
        futures = [
            pool.submit(download, cell.server.port, share, size, deadline)
            for _ in range(connections)
        ]
        done = sum(f.result() for f in futures)
    elapsed = time.monotonic() - started
    after = cell.worker.cpu_times()
    used = (after.user - cpu.user) + (after.system - cpu.system)
    cell.rates.append(done / elapsed)
    cell.cpu_per.append(used / done)


def check_bytes(server: Server, content: bytes) -> None:
    with urllib.request.urlopen(f"{server.url}/file", timeout=60) as response:
        body = response.read()
    if hashlib.sha256(body).digest() != hashlib.sha256(content).digest():
        raise RuntimeError(f"{server.url}/file: the body is not the file")


def sendfile_calls(server: Server) -> dict[str, int]:
    with urllib.request.urlopen(f"{server.url}/sendfile-calls", timeout=30) as response:
        return dict(json.loads(response.read()))


def worker_of(server: Server) -> psutil.Process:
    master = psutil.Process(server.proc.pid)
    deadline = time.monotonic() + 20
    while not master.children() and time.monotonic() < deadline:
        time.sleep(0.05)
    return master.children()[0]


def table(cells: list[Cell], size: int, args: argparse.Namespace) -> str:
    base = max(cells[-1].rates)
    lines = [
        "# Zero-copy files: FastAPI `FileResponse` on gunicorn gthread",
        "",
        f"`python -m bench.pathsend{' --quick' if args.quick else ''}`: a {size // MiB} MiB file, "
        f"{args.connections} keep-alive connections, at most {args.requests} downloads or "
        f"{args.seconds:g} s a cell, best of {args.rounds} interleaved rounds; "
        f"`gunicorn -k gthread --threads 4 -w 1`, 127.0.0.1. "
        f"Python {platform.python_version()}, {os.cpu_count()} cores (shared with other work: "
        "compare the rows of one run, not runs).",
        "",
        "| adapter | downloads/s | MiB/s | vs a2wsgi | worker CPU ms / download | "
        "os.sendfile calls / bytes |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for cell in cells:
        rate = max(cell.rates)
        calls = cell.sendfile
        lines.append(
            f"| {cell.name} | {rate:.1f} | {rate * size / MiB:,.0f} | {rate / base:.2f}× | "
            f"{min(cell.cpu_per) * 1000:.1f} | {calls['calls']:,} / {calls['bytes'] / MiB:,.0f} MiB |"
        )
    lines += [
        "",
        "Every response was checked for status 200 and its exact length, and one of each server "
        "byte for byte against the file. The sendfile column counts the worker's `os.sendfile` "
        "calls over the whole run (warm-ups and checks included): bytes = every download's.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--mib", type=int, default=16)
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    args.requests = args.requests or (40 if args.quick else 200)
    args.seconds = args.seconds or (3.0 if args.quick else 8.0)
    args.rounds = args.rounds or (1 if args.quick else 3)
    size = args.mib * MiB
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        path = Path(tmp) / "file.bin"
        content = os.urandom(size)
        path.write_bytes(content)
        env = {"BRIDGE_TEST_FILE": str(path)}
        cells = []
        for name, argv_ in CELLS.items():
            server = stack.enter_context(serve(argv_, env=env, timeout=30))
            check_bytes(server, content)
            cells.append(Cell(name, server, worker_of(server)))
        for round_ in range(args.rounds):
            for cell in cells:
                measure(cell, size, args.requests, args.seconds, args.connections)
                print(f"round {round_ + 1} {cell.name}: {cell.rates[-1]:.1f}/s", flush=True)
        for cell in cells:
            cell.sendfile = sendfile_calls(cell.server)
    result = table(cells, size, args)
    print(result)
    if args.output is not None:
        args.output.write_text(result)


if __name__ == "__main__":
    main()
