"""``python -m bridge serve MODULE:APP --server uvicorn|gunicorn``."""

from ._cli import main

main()
