"""What produced a benchmark's figures: the command, the machine, the versions, the date, the load.

Every results file of bench.http_bench carries this stamp, so a figure can be reproduced (or
discounted: the load average says how busy the machine was while it ran).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "bridge",
    "a2wsgi",
    "uvicorn",
    "httptools",
    "uvloop",
    "gunicorn",
    "flask",
    "fastapi",
    "starlette",
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def git_commit() -> str:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git(
        "status", "--porcelain", "--untracked-files=no", "--", "bridge", "bench", ":!bench/results"
    )
    return commit + ("+dirty" if dirty else "")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def stamp(load_generator: str) -> dict[str, Any]:
    """The stamp at the start of a run; ``finish()`` adds the load at its end."""
    return {
        "command": "python -m bench.http_bench " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": cpu_model(),
            "memory_gib": round(memory_gib(), 1),
            "kernel": platform.release(),
        },
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "versions": versions(),
        "load_generator": load_generator,
        "commit": git_commit(),
        "load_before": load(),
    }


def finish(report_stamp: dict[str, Any], elapsed: float) -> None:
    report_stamp["load_after"] = load()
    report_stamp["elapsed_s"] = round(elapsed, 1)


def lines(s: dict[str, Any]) -> list[str]:
    """The stamp as short lines of text, for the Markdown table and the chart."""
    m = s["machine"]
    packages = ", ".join(f"{name} {v}" for name, v in s["versions"].items())
    return [
        f"Command: `{s['command']}` (commit {s['commit']}), {s['date']}, "
        f"{s.get('elapsed_s', '?')} s.",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']:g} GiB, Linux {m['kernel']}; "
        f"load average (1, 5, 15 min) {s['load_before']} before, "
        f"{s.get('load_after', '?')} after.",
        f"Load generator: {s['load_generator']}.",
        f"Versions: {s['python']}, {packages}.",
    ]


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (gunicorn's worker)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError, IndexError):
            continue
    return total
