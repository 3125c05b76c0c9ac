"""What every matrix app shares, whatever its framework: the shared directory, the gate of
``/stream``, the marker of ``/endless`` and a ``Range`` parser for frameworks without one."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from tests.matrix.scenarios import GATE_WAIT

CHUNK = b"x" * 1024
PAUSE = 0.01  # between /endless chunks: a steady trickle, not a busy loop


def shared_dir() -> Path:
    return Path(os.environ["BRIDGE_TEST_DIR"])


def file_path() -> Path:
    return shared_dir() / "file.bin"


def _checked(name: str) -> Path:
    if not name.isidentifier():
        raise ValueError(f"marker names are identifiers, got {name!r}")
    return shared_dir() / name


def gate_chunks(name: str) -> Iterator[bytes]:
    yield b"one;"
    gate = _checked(name)
    deadline = time.monotonic() + GATE_WAIT
    while not gate.exists():
        if time.monotonic() > deadline:
            yield b"timeout"
            return
        time.sleep(0.005)
    yield b"two"


async def async_gate_chunks(name: str) -> AsyncIterator[bytes]:
    yield b"one;"
    gate = _checked(name)
    deadline = time.monotonic() + GATE_WAIT
    while not gate.exists():
        if time.monotonic() > deadline:
            yield b"timeout"
            return
        await asyncio.sleep(0.005)
    yield b"two"


def endless_chunks(name: str) -> Iterator[bytes]:
    marker = _checked(name)
    try:
        while True:
            yield CHUNK
            time.sleep(PAUSE)
    finally:
        marker.touch()


async def async_endless_chunks(name: str) -> AsyncIterator[bytes]:
    marker = _checked(name)
    try:
        while True:
            yield CHUNK
            await asyncio.sleep(PAUSE)
    finally:
        marker.touch()


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``bytes=A-B`` (one range, inside the file) as ``(start, stop)``; anything else None."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[len("bytes=") :].partition("-")
    if not first.isdigit() or not (last.isdigit() or last == ""):
        return None
    start, stop = int(first), (int(last) + 1 if last else size)
    return (start, min(stop, size)) if start < min(stop, size) else None
