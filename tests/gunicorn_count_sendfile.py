"""gunicorn config (``-c tests/gunicorn_count_sendfile.py``): count ``os.sendfile`` calls in
each worker, for ``tests/apps_pathsend.py``'s ``/sendfile-calls``."""

from typing import Any


def post_worker_init(worker: Any) -> None:
    from tests.apps_pathsend import count_sendfile

    count_sendfile()
