"""``docs/conformance.md`` cannot go stale: re-rendered from the checks' marks in a tmp dir, it
must equal the committed file. The marks are strict xfails and the suite runs every check, so a
green suite means the marks are the outcomes. Only the peers' version numbers are left out of
the comparison: CI installs whatever a2wsgi and asgiref are newest, and a version bump that
changes no outcome must not fail the build (one that does fails its strict xfail anyway)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conformance_report import DOC, GENERATED, ROOT

pytestmark = pytest.mark.timeout(120)


def normalised(text: str) -> str:
    """The text with the version numbers on its header line replaced by N."""
    lines = text.splitlines()
    return "\n".join(re.sub(r"\d+(\.\d+)+", "N", x) if GENERATED in x else x for x in lines)


def test_the_committed_table_is_the_rendered_one(tmp_path: Path) -> None:
    fresh = tmp_path / "conformance.md"
    command = [
        sys.executable,
        "-m",
        "tests.conformance_report",
        "--from-marks",
        "--output",
        str(fresh),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stdout + done.stderr
    assert normalised(DOC.read_text(encoding="utf-8")) == normalised(
        fresh.read_text(encoding="utf-8")
    ), "docs/conformance.md is stale: run scripts/conformance and commit the result"


def test_the_header_names_the_command_and_the_peers() -> None:
    header = next(
        line for line in DOC.read_text(encoding="utf-8").splitlines() if GENERATED in line
    )
    assert re.search(r"a2wsgi \d", header) and re.search(r"asgiref \d", header), header
