"""``python -m bridge serve MODULE:APP``: the same as the ``bridge`` command."""

from ._cli import main

main(prog="python -m bridge")
