"""The load generators of bench.http_bench: wrk (the default), or a Python asyncio client.

``wrk`` (Debian's package, C, epoll) runs with one thread pinned to its own core, keeps
``connections`` keep-alive connections busy for whole seconds, and reports through
``bench/wrk_check.lua``: every response's status and body size is checked in ``response()`` (so
a broken cell cannot post a fast number), and ``done()`` prints one JSON line with the counts and
the latency percentiles. The Python client is the benchmark's old generator, kept as
``--client python`` for machines without wrk: it spends far more CPU per request than wrk, so
the fastest cells measure the client rather than the server.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

MAX_REQUESTS = 50_000  # Python client: per measured window, so a runaway fast cell still ends

WRK_SCRIPT = Path(__file__).with_name("wrk_check.lua")  # checks every response


class BadResponse(Exception):
    pass


@dataclass
class Window:
    """One measured window of one cell."""

    rate: float  # responses per second
    p50_ms: float
    p99_ms: float
    responses: int
    seconds: float
    client_cpu: float  # the load generator's CPU seconds / wall seconds (1.0 = one core busy)
    socket_errors: int = 0


def find_wrk() -> str:
    """wrk's path; installs Debian's package when missing and root, else exits with how to."""
    found = shutil.which("wrk")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench.http_bench: installing wrk (apt-get install -y wrk)", flush=True)
        install = ["apt-get", "install", "-y", "-q", "wrk"]
        if subprocess.run(install, stdout=subprocess.DEVNULL).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], stdout=subprocess.DEVNULL)
            subprocess.run(install, stdout=subprocess.DEVNULL)
        found = shutil.which("wrk")
    if found is None:
        sys.exit(
            "bench.http_bench needs wrk: `sudo apt-get install wrk` "
            "(or run with --client python, a slower client)"
        )
    return found


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).splitlines()[0].split(" Copyright")[0].strip()


class Wrk:
    def __init__(self, wrk: str, connections: int, cpus: set[int] | None) -> None:
        self.wrk = wrk
        self.connections = connections
        self.prefix = ["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus else []
        self.script = WRK_SCRIPT

    def argv(self, url: str, seconds: int, expect: int) -> list[str]:
        return [
            *self.prefix,
            self.wrk,
            "--threads=1",
            f"--connections={self.connections}",
            f"--duration={seconds}s",
            "--timeout=10s",
            f"--script={self.script}",
            url,
            "--",
            str(expect),
        ]

    def settings(self) -> str:
        pin = f"taskset -c {self.prefix[2]} " if self.prefix else ""
        return f"{pin}wrk -t1 -c{self.connections} --timeout=10s -s bench/wrk_check.lua"

    def measure(self, port: int, path: str, expect: int, seconds: float) -> Window:
        url = f"http://127.0.0.1:{port}{path}"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            self.argv(url, max(1, round(seconds)), expect), capture_output=True, text=True
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        lines = [line for line in done.stdout.splitlines() if line.startswith("WRK-JSON ")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
        out = json.loads(lines[-1].removeprefix("WRK-JSON "))
        if out["bad"] or out["status"]:
            raise BadResponse(
                f"GET {path}: {out['bad']} bad responses, first: {out['first_bad']} "
                f"(want status 200, {expect} body bytes)"
            )
        wall = out["duration_us"] / 1e6
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return Window(
            rate=out["responses"] / wall,
            p50_ms=out["p50_us"] / 1e3,
            p99_ms=out["p99_us"] / 1e3,
            responses=out["responses"],
            seconds=wall,
            client_cpu=cpu / wall,
            socket_errors=out["connect"] + out["read"] + out["write"] + out["timeout"],
        )


# -- the Python client (--client python) ----------------------------------------------------------


async def read_response(reader: asyncio.StreamReader) -> tuple[int, int, bool]:
    """One HTTP/1.1 response: (status, body bytes, whether the server keeps the connection)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
    keep = headers.get("connection") != "close"
    if "content-length" in headers:
        size = int(headers["content-length"])
        await reader.readexactly(size)
        return status, size, keep
    if headers.get("transfer-encoding") != "chunked":
        raise BadResponse(f"neither Content-Length nor chunked: {headers}")
    size = 0
    while True:
        length = int((await reader.readline()).split(b";", 1)[0], 16)
        if length == 0:
            while (await reader.readline()) not in (b"\r\n", b""):
                pass  # trailers
            return status, size, keep
        await reader.readexactly(length + 2)
        size += length


async def hammer(
    port: int,
    path: str,
    expect: int,
    seconds: float,
    limit: int = MAX_REQUESTS,
    connections: int = 16,
) -> list[float]:
    """``connections`` keep-alive clients until ``seconds`` pass or ``limit`` responses came;
    returns each response's latency."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while len(latencies) < limit and time.perf_counter() < deadline:
                sent = time.perf_counter()
                writer.write(request)
                status, size, keep = await read_response(reader)
                latencies.append(time.perf_counter() - sent)
                if status != 200 or size != expect:
                    raise BadResponse(f"GET {path}: {status}, {size} bytes (want 200, {expect})")
                if not keep:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


class PythonClient:
    def __init__(self, connections: int, cpus: set[int] | None) -> None:
        self.connections = connections
        self.cpus = cpus
        if cpus:
            os.sched_setaffinity(0, cpus)  # this process is the client

    def settings(self) -> str:
        pin = f" pinned to CPU {','.join(map(str, sorted(self.cpus)))}" if self.cpus else ""
        return f"Python asyncio client, {self.connections} connections{pin}"

    def measure(self, port: int, path: str, expect: int, seconds: float) -> Window:
        cpu = time.process_time()
        started = time.perf_counter()
        latencies = asyncio.run(hammer(port, path, expect, seconds, connections=self.connections))
        wall = time.perf_counter() - started
        return Window(
            rate=len(latencies) / wall,
            p50_ms=percentile(latencies, 0.5) * 1e3,
            p99_ms=percentile(latencies, 0.99) * 1e3,
            responses=len(latencies),
            seconds=wall,
            client_cpu=(time.process_time() - cpu) / wall,
        )
