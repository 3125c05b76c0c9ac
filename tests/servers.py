"""Real server subprocesses for end-to-end tests: started on 127.0.0.1 with an ephemeral port,
stopped by their pid, their output kept for the failure message."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def write_marker(path: Path, text: str) -> None:
    """For apps that tell a test what happened: all at once (a rename), so a test that sees
    the file never reads it half written."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        """Send ``sig`` to the server's pid and wait for it to exit; kill it if it will not."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def _wait_listening(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode}:\n{server.log()}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"server did not listen within {timeout}s:\n{server.log()}")


@contextmanager
def serve(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 20,
    asyncio_debug: bool = False,
) -> Iterator[Server]:
    """Run ``argv`` (``{port}`` replaced by a free port, in ``env``'s values too) until the block
    ends.

    ``argv[0]`` is looked up in the virtualenv's ``bin``, so ``["uvicorn", ...]`` runs the
    uvicorn that belongs to the test interpreter. The server runs without asyncio's debug mode
    unless ``asyncio_debug`` (its slow-callback warnings would flood the log).
    """
    port = free_port()
    args = [str(BIN / argv[0]), *(a.replace("{port}", str(port)) for a in argv[1:])]
    env = {name: value.replace("{port}", str(port)) for name, value in (env or {}).items()}
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    if asyncio_debug:
        full_env["PYTHONASYNCIODEBUG"] = "1"
    else:
        full_env.pop("PYTHONASYNCIODEBUG", None)
    with tempfile.NamedTemporaryFile("wb", suffix=".log", delete=False) as log:
        proc = subprocess.Popen(args, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    server = Server(proc, port, Path(log.name))
    try:
        _wait_listening(server, timeout)
        yield server
    finally:
        server.stop()
        Path(log.name).unlink(missing_ok=True)
