"""Soak: a long mixed load through both adapters on real servers; nothing may leak or fail.

    .venv/bin/python -m bench.soak                       # 100,000 requests per server, c=64
    .venv/bin/python -m bench.soak --quick               # 3,000 requests per server
    .venv/bin/python -m bench.soak --md bench/results/soak.md

Two servers, one after the other: uvicorn serving Flask through ``WsgiToAsgi`` and ``gunicorn
-k gthread`` (1 worker, 8 threads) serving FastAPI through ``AsgiToWsgi`` (``bench.soak_apps``).
The load is this process: ``--concurrency`` clients on one asyncio loop over raw sockets
(``bench.http_bench``'s parser), keep-alive, sharing one count of ``--requests``. Out of every
20 requests: 10 plain GETs, 4 streams (64 x 1 KiB, read whole), 3 uploads (``UPLOAD`` bytes,
the app answers the length it read), 2 requests to a route that raises (500 expected), and 1
client that opens a connection of its own, reads a little of an endless stream and hangs up.

Expected: 200 and the exact body size for plain, stream and upload, 500 for the error route,
anything for the clients that hang up; everything else (another status, a short body, a reset,
a timeout) is an unexpected error, and there must be none. Around the load, the server process
(gunicorn: its worker) is sampled with psutil after a warm-up and again after the load once it
has settled (bounded wait): threads and open file descriptors must be back to the baseline
(within ``TOLERANCE``), RSS may grow by less than ``RSS_BOUND``; the adapter's ``stats()``
(``GET /stats``) must have counted each response served and each hang-up. All traffic goes to
127.0.0.1; each server's run is capped by ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.loadgen import percentile, read_response
from bench.soak_apps import CHUNK, HELLO, STREAM_CHUNKS

ROOT = Path(__file__).resolve().parent.parent
UPLOAD = 300 * 1024  # past the 256 KiB WsgiToAsgi holds in memory: its temporary file is used
MIX = ["plain"] * 10 + ["stream"] * 4 + ["upload"] * 3 + ["error"] * 2 + ["hangup"]
EXPECT = {  # status and body size
    "plain": (200, len(HELLO)),
    "stream": (200, STREAM_CHUNKS * len(CHUNK)),
    "upload": (200, len(str(UPLOAD))),
    "error": (500, None),
}
HANGUP_READ = 32 * 1024  # bytes of the endless stream a hanging-up client reads
REQUEST_TIMEOUT = 60.0  # seconds one request may take before it counts as an error
TOLERANCE = {"threads": 0, "fds": 2}  # back to baseline within this
RSS_BOUND = 20 * 1024 * 1024
SETTLE = 10.0  # seconds at most for the server to settle after the load
MiB = 1024 * 1024

SERVERS = {
    "uvicorn + Flask via WsgiToAsgi": [
        "uvicorn",
        "--host=127.0.0.1",
        "--port={port}",
        "--interface=asgi3",
        "--no-access-log",
        "--log-level=warning",
        "bench.soak_apps:flask_soak",
    ],
    "gunicorn gthread (1 worker, 8 threads) + FastAPI via AsgiToWsgi": [
        "gunicorn",
        "--bind=127.0.0.1:{port}",
        "--workers=1",
        "--worker-class=gthread",
        "--threads=8",
        "--no-control-socket",
        "--log-level=warning",
        "bench.soak_apps:fastapi_soak",
    ],
}


# -- the load -----------------------------------------------------------------------------------


@dataclass
class Load:
    done: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)  # unexpected outcomes, first ones kept whole
    error_count: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, all but the hang-ups
    seconds: float = 0.0
    capped: bool = False

    def error(self, text: str) -> None:
        self.error_count += 1
        if len(self.errors) < 10:
            self.errors.append(text)


def _request(kind: str, port: int) -> bytes:
    host = f"Host: 127.0.0.1:{port}\r\n"
    if kind == "upload":
        head = f"POST /upload HTTP/1.1\r\n{host}Content-Length: {UPLOAD}\r\n"
        head += "Content-Type: application/octet-stream\r\n\r\n"
        return head.encode() + b"u" * UPLOAD
    path = {"plain": "/", "stream": "/stream", "error": "/error"}[kind]
    return f"GET {path} HTTP/1.1\r\n{host}\r\n".encode()


async def _hang_up(port: int) -> None:
    """A client of its own: GET the endless stream, read a little of it, close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET /endless HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        got = 0
        while got < HANGUP_READ:
            data = await reader.read(HANGUP_READ - got)
            if not data:
                break
            got += len(data)
    finally:
        writer.close()


async def fill_threads(port: int, count: int) -> None:
    """``count`` requests to ``/pause`` at once: every pool thread the server starts on demand
    is started before the baseline is taken."""

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /pause HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        await asyncio.wait_for(reader.read(), 30)
        writer.close()

    await asyncio.gather(*(one() for _ in range(count)))


async def drive(port: int, requests: int, concurrency: int, cap: float) -> Load:
    """``concurrency`` clients until ``requests`` were made or ``cap`` seconds passed."""
    load = Load()
    numbers = itertools.count()
    began = time.perf_counter()
    deadline = began + cap
    requests_by_kind = {kind: _request(kind, port) for kind in EXPECT}

    async def client() -> None:
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                number = next(numbers)
                if number >= requests:
                    return
                if time.perf_counter() > deadline:
                    load.capped = True
                    return
                kind = MIX[number % len(MIX)]
                if kind == "hangup":
                    with contextlib.suppress(OSError, asyncio.TimeoutError):
                        await asyncio.wait_for(_hang_up(port), REQUEST_TIMEOUT)
                    load.done[kind] += 1
                    continue
                try:
                    if connection is None:
                        connection = await asyncio.open_connection("127.0.0.1", port)
                    reader, writer = connection
                    sent = time.perf_counter()
                    writer.write(requests_by_kind[kind])
                    status, size, keep = await asyncio.wait_for(
                        read_response(reader), REQUEST_TIMEOUT
                    )
                    load.latencies.append(time.perf_counter() - sent)
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
                    load.error(f"{kind}: {type(exc).__name__}: {exc}")
                    if connection is not None:
                        connection[1].close()
                    connection = None
                    continue
                want_status, want_size = EXPECT[kind]
                if status != want_status or want_size not in (None, size):
                    load.error(f"{kind}: {status}, {size} bytes (want {want_status}, {want_size})")
                load.done[kind] += 1
                if not keep:
                    writer.close()
                    connection = None
        finally:
            if connection is not None:
                connection[1].close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    load.seconds = time.perf_counter() - began
    return load


async def get_json(port: int, path: str) -> Any:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        answer = await asyncio.wait_for(reader.read(), REQUEST_TIMEOUT)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"GET {path}: {head[:100]!r}")
    return json.loads(body)


def stats(port: int, settle: float = SETTLE) -> tuple[dict[str, Any], int]:
    """The adapter's ``stats()`` once the server is quiet (``settle`` s at most), and how many
    ``/stats`` requests that took (each one before the last is served, and counted, too).

    Quiet: nothing but this request busy, and since the previous ``/stats`` nothing counted but
    that one served. A client that hung up may still be on its way out of the server, and
    ``AsgiToWsgi`` counts a response served when the server ends its iterable, just after the
    client has had the bytes.
    """
    deadline = time.monotonic() + settle
    previous: dict[str, Any] | None = None
    for polls in itertools.count(1):
        reply: dict[str, Any] = asyncio.run(get_json(port, "/stats"))
        quiet = previous is not None and reply["busy"] <= 1 and reply["waiting"] == 0
        if previous is not None:
            quiet = quiet and reply["served"] == previous["served"] + 1
            quiet = quiet and reply["disconnects"] == previous["disconnects"]
        if quiet or time.monotonic() > deadline:
            return reply, polls
        previous = reply
        time.sleep(0.02)
    raise AssertionError("unreachable")


# -- the server process -------------------------------------------------------------------------


@dataclass
class Sample:
    threads: int
    fds: int
    rss: int


def sample(process: psutil.Process) -> Sample:
    return Sample(process.num_threads(), process.num_fds(), process.memory_info().rss)


def settled(process: psutil.Process, baseline: Sample, timeout: float = SETTLE) -> Sample:
    """Sample ``process`` until threads and fds are back within ``TOLERANCE`` of ``baseline``,
    for ``timeout`` seconds at most; the last sample either way."""
    deadline = time.monotonic() + timeout
    while True:
        now = sample(process)
        back = now.threads <= baseline.threads + TOLERANCE["threads"]
        if (back and now.fds <= baseline.fds + TOLERANCE["fds"]) or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def server_process(proc_pid: int, gunicorn: bool) -> psutil.Process:
    """The process that runs the adapter: uvicorn itself, or gunicorn's only worker."""
    master = psutil.Process(proc_pid)
    if not gunicorn:
        return master
    deadline = time.monotonic() + 10
    while not master.children() and time.monotonic() < deadline:
        time.sleep(0.05)
    children = master.children()
    if len(children) != 1:
        raise RuntimeError(f"gunicorn has {len(children)} workers, want 1")
    return children[0]


# -- one server, and the report -----------------------------------------------------------------


@dataclass
class Report:
    server: str
    load: Load
    before: Sample
    after: Sample
    stats_before: dict[str, Any]
    stats_after: dict[str, Any]
    polls: int  # /stats requests it took to find the server idle after the load
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def check(report: Report, requests: int) -> list[str]:
    load, before, after = report.load, report.before, report.after
    problems = []
    if load.capped:
        problems.append(f"capped: {sum(load.done.values())} of {requests} requests in time")
    if load.error_count:
        problems.append(f"{load.error_count} unexpected errors, first: {load.errors}")
    for name in ("threads", "fds"):
        was, now = getattr(before, name), getattr(after, name)
        if now > was + TOLERANCE[name]:
            problems.append(f"{name}: {was} before, {now} after")
    if after.rss - before.rss >= RSS_BOUND:
        problems.append(f"RSS grew {(after.rss - before.rss) / MiB:.1f} MiB")
    s0, s1 = report.stats_before, report.stats_after
    answered = sum(n for kind, n in load.done.items() if kind != "hangup")
    served = s1["served"] - s0["served"]
    if served != answered + report.polls:  # the /stats requests before the last were served too
        problems.append(f"stats: served +{served}, responses {answered} + {report.polls} /stats")
    disconnects = s1["disconnects"] - s0["disconnects"]
    if disconnects != load.done["hangup"]:
        problems.append(f"stats: disconnects +{disconnects}, hang-ups {load.done['hangup']}")
    for name in ("rejected_503", "bad_request_400", "too_large_413", "timeout_504"):
        if s1[name] != s0[name]:
            problems.append(f"stats: {name} {s0[name]} -> {s1[name]}")
    if s1["busy"] != 1 or s1["waiting"] != 0:
        problems.append(f"stats: busy {s1['busy']}, waiting {s1['waiting']} at the end")
    return problems


def soak(
    name: str, requests: int, concurrency: int, cap: float, warmup: int | None = None
) -> Report:
    """Start ``SERVERS[name]``, warm it up, sample it, load it, let it settle, sample again."""
    from tests.servers import serve  # here: a run as a file puts the project root on sys.path

    argv = SERVERS[name]
    warmup = max(concurrency * 20, requests // 50) if warmup is None else warmup
    with serve(argv, timeout=60) as server:
        process = server_process(server.proc.pid, argv[0] == "gunicorn")
        warm = asyncio.run(drive(server.port, warmup, concurrency, cap))
        if warm.error_count:
            raise RuntimeError(f"{name}: errors in the warm-up: {warm.errors}\n{server.log()}")
        asyncio.run(fill_threads(server.port, 2 * concurrency))
        stats_before, _ = stats(server.port)
        time.sleep(0.5)  # the warm-up's connections close
        before = sample(process)
        load = asyncio.run(drive(server.port, requests, concurrency, cap))
        stats_after, polls = stats(server.port)
        after = settled(process, before)
        report = Report(name, load, before, after, stats_before, stats_after, polls, [])
        report.problems = check(report, requests)
        if report.problems:
            print(server.log()[-4000:], file=sys.stderr)
    return report


def line(report: Report) -> str:
    load, b, a = report.load, report.before, report.after
    s0, s1 = report.stats_before, report.stats_after
    return (
        f"{report.server}: {sum(load.done.values()):,} requests in {load.seconds:.1f} s "
        f"({sum(load.done.values()) / load.seconds:,.0f}/s), {dict(load.done)}; "
        f"unexpected errors {load.error_count}; threads {b.threads} -> {a.threads}; "
        f"fds {b.fds} -> {a.fds}; RSS {b.rss / MiB:.1f} -> {a.rss / MiB:.1f} MiB; "
        f"p50 {percentile(load.latencies, 0.5) * 1e3:.2f} ms, "
        f"p99 {percentile(load.latencies, 0.99) * 1e3:.2f} ms; "
        f"stats served +{s1['served'] - s0['served']}, "
        f"disconnects +{s1['disconnects'] - s0['disconnects']}; "
        + ("OK" if report.ok else "FAILED: " + "; ".join(report.problems))
    )


def markdown(reports: list[Report], requests: int, concurrency: int) -> str:
    lines = [
        f"{requests:,} requests per server at concurrency {concurrency} from one asyncio client "
        f"on 127.0.0.1 (`python -m bench.soak`); out of every 20: 10 plain GETs, 4 streams "
        f"(64 x 1 KiB), 3 uploads of {UPLOAD // 1024} KiB, 2 to a route that raises (500), 1 "
        "client that hangs up mid-stream. Threads, fds and RSS are the server process's "
        "(gunicorn: its worker), after a warm-up and after the load has settled.",
        "",
        "| server | requests | unexpected errors | threads before → after | fds before → after "
        "| RSS before → after | p50 | p99 | req/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in reports:
        done = sum(r.load.done.values())
        lines.append(
            f"| {r.server} | {done:,} | {r.load.error_count} | {r.before.threads} → "
            f"{r.after.threads} | {r.before.fds} → {r.after.fds} | {r.before.rss / MiB:.1f} → "
            f"{r.after.rss / MiB:.1f} MiB (+{(r.after.rss - r.before.rss) / MiB:.1f}) | "
            f"{percentile(r.load.latencies, 0.5) * 1e3:.1f} ms | "
            f"{percentile(r.load.latencies, 0.99) * 1e3:.1f} ms | {done / r.load.seconds:,.0f} |"
        )
    lines += [
        "",
        "The adapter's `stats()` at the end (`GET /stats`), and its change over the load:",
        "",
    ]
    for r in reports:
        s0, s1 = r.stats_before, r.stats_after
        delta = {k: s1[k] - s0[k] for k in ("served", "disconnects")}
        shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in s1.items()}
        lines.append(f"- {r.server}: `{json.dumps(shown)}`; over the load: `{json.dumps(delta)}` "
                     f"(responses {sum(n for k, n in r.load.done.items() if k != 'hangup'):,} "
                     f"+ {r.polls} `/stats`, hang-ups {r.load.done['hangup']:,})")  # fmt: skip
    lines.append("")
    verdict = "all checks passed" if all(r.ok for r in reports) else "FAILED"
    lines.append(f"Result: {verdict}.")
    for r in reports:
        for problem in r.problems:
            lines.append(f"- {r.server}: {problem}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000, help="per server")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="3,000 requests per server")
    parser.add_argument("--max-seconds", type=float, default=900, help="cap per server's load")
    parser.add_argument("--md", type=Path, help="also write the table as Markdown here")
    parser.add_argument("--only", choices=["uvicorn", "gunicorn"], help="one server")
    args = parser.parse_args()
    requests = 3_000 if args.quick else args.requests
    reports = []
    for name in SERVERS:
        if args.only and not name.startswith(args.only):
            continue
        reports.append(soak(name, requests, args.concurrency, args.max_seconds))
        print(line(reports[-1]), flush=True)
    if args.md:
        args.md.write_text(markdown(reports, requests, args.concurrency))
        print("written:", args.md)
    sys.exit(0 if all(r.ok for r in reports) else 1)


if __name__ == "__main__":
    if str(ROOT) not in sys.path:  # run as a file, not with -m
        sys.path.insert(0, str(ROOT))
    main()
