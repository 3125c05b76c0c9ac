"""Copy the committed benchmark tables into README.md.

    .venv/bin/python -m bench.readme            # after a full bench run: rewrite the blocks
    .venv/bin/python -m bench.readme --check    # exit 1 if README.md differs from the results

README.md holds ``bench/results/inprocess.md`` and ``bench/results/http.md`` whole, each between
``<!-- bench/results/NAME.md -->`` and ``<!-- end bench/results/NAME.md -->``, so the figures a
reader sees are the ones a run wrote (with its command, machine and versions), never retyped.
``tests/test_readme.py`` fails while a block differs from its file.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
INCLUDED = ["bench/results/inprocess.md", "bench/results/http.md"]


def _block(name: str) -> re.Pattern[str]:
    quoted = re.escape(name)
    return re.compile(rf"(<!-- {quoted} -->\n)(.*?)(<!-- end {quoted} -->)", re.DOTALL)


def render(readme: str) -> str:
    """``readme`` with every included block replaced by its file's text."""
    for name in INCLUDED:
        pattern = _block(name)
        if not pattern.search(readme):
            raise LookupError(f"README.md has no block for {name}")
        text = (ROOT / name).read_text(encoding="utf-8").strip("\n")
        readme = pattern.sub(lambda m, text=text: f"{m[1]}{text}\n{m[3]}", readme)
    return readme


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether it is current")
    args = parser.parse_args()
    current = README.read_text(encoding="utf-8")
    wanted = render(current)
    if args.check:
        if current != wanted:
            print("README.md's benchmark blocks differ from bench/results: run bench.readme")
            return 1
        print("README.md's benchmark blocks are the committed results")
        return 0
    README.write_text(wanted, encoding="utf-8")
    print(f"wrote {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
