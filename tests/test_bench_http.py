"""bench.http_bench's load generators check what they count, and a quick run writes its tables.

No figure is asserted (the machine is shared); what is checked is that a response with the wrong
status or body size fails the measurement instead of posting a fast number, and that a run
produces the text table, the JSON, the Markdown table and the chart with their stamp.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.loadgen import BadResponse, PythonClient, Wrk
from tests.servers import ROOT, serve

pytestmark = [pytest.mark.timeout(120), pytest.mark.server]

WRK = shutil.which("wrk")
needs_wrk = pytest.mark.skipif(WRK is None, reason="wrk is not installed (apt-get install wrk)")
HELLO = ["uvicorn", "--host=127.0.0.1", "--port={port}", "--lifespan=off"]
HELLO += ["--log-level=warning", "bench.http_apps:asgi_hello"]


@needs_wrk
def test_wrk_counts_only_right_responses() -> None:
    assert WRK is not None
    wrk = Wrk(WRK, connections=2, cpus=None)
    with serve(HELLO, timeout=60) as server:
        window = wrk.measure(server.port, "/", 13, 1)
        assert window.responses > 0
        assert window.socket_errors == 0
        with pytest.raises(BadResponse, match="13 body bytes"):
            wrk.measure(server.port, "/", 12, 1)  # one byte off: every response is bad


def test_python_client_counts_only_right_responses() -> None:
    client = PythonClient(connections=2, cpus=None)
    with serve(HELLO, timeout=60) as server:
        assert client.measure(server.port, "/", 13, 0.2).responses > 0
        with pytest.raises(BadResponse, match="want 200, 14"):
            client.measure(server.port, "/", 14, 0.2)


@needs_wrk
def test_quick_run_writes_the_tables_and_the_chart(tmp_path: Path) -> None:
    out = tmp_path / "http.json"
    argv = [sys.executable, "-m", "bench.http_bench", "--quick", "--only=http-fastapi-stream"]
    done = subprocess.run(
        [*argv, f"--json={out}"], cwd=ROOT, capture_output=True, text=True, timeout=110
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bridge (per-thread)" in done.stdout
    report = json.loads(out.read_text())
    (result,) = report["results"]
    assert [a["name"] for a in result["adapters"]] == [
        "bridge (per-thread)",
        "a2wsgi",
        "FastAPI native on uvicorn",
    ]
    assert all(a["best"] > 0 and a["responses"] > 0 for a in result["adapters"])
    assert report["stamp"]["versions"]["a2wsgi"] != "not installed"
    table = (tmp_path / "http.md").read_text()
    assert "| FastAPI 100 x 1 KiB stream" in table
    assert "Load generator: wrk" in table
    assert "<svg" in (tmp_path / "http_chart.svg").read_text()


def test_a_cell_whose_server_idles_is_flagged() -> None:
    from bench.http_report import idle_note

    busy = {"name": "busy", "best": 1000.0, "server_cpu_us": 990.0}
    idle = {"name": "idle", "best": 1000.0, "server_cpu_us": 420.0}
    assert "measures the server" in idle_note([{"title": "t", "adapters": [busy]}])
    note = idle_note([{"title": "t", "adapters": [busy, idle]}])
    assert "idle (42%)" in note
    assert "t: busy" not in note
