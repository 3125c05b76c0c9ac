"""The body of an ``http.response.pathsend`` (the ASGI extension ``AsgiToWsgi`` offers).

The app names a file; ``AppCall`` opens it before the app's ``send()`` returns, and the WSGI
call hands it to the server's ``wsgi.file_wrapper``: gunicorn then sends it with
``sendfile()``, no byte of it passing through Python or the event loop. A server without a
file wrapper gets it in ``chunk_size`` blocks, read in its own thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

from .._types import Environ


def path_body(
    file: BinaryIO, block_size: int, finish: Callable[[], None], environ: Environ
) -> Iterable[bytes]:
    """``file`` as the WSGI body, in the server's ``wsgi.file_wrapper`` when it has one."""
    body = PathBody(file, block_size, finish)
    wrapper: Callable[[Any, int], Iterable[bytes]] | None = environ.get("wsgi.file_wrapper")
    return body if wrapper is None else wrapper(body, block_size)


class PathBody:
    """The file of an ``http.response.pathsend`` as a WSGI body: iterable in blocks, and a
    file-like object (``fileno``, ``read``, ``seek``) a server's ``wsgi.file_wrapper`` can
    hand to ``sendfile()``. ``close()`` closes the file, then finishes the app's call."""

    def __init__(self, file: BinaryIO, block_size: int, finish: Callable[[], None]) -> None:
        self._file = file
        self._block_size = block_size
        self._finish: Callable[[], None] | None = finish
        self.mode = "rb"  # socket.sendfile() checks for a binary file

    def fileno(self) -> int:
        return self._file.fileno()

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def __iter__(self) -> PathBody:
        return self

    def __next__(self) -> bytes:
        block = self._file.read(self._block_size)
        if not block:
            raise StopIteration
        return block

    def close(self) -> None:
        finish, self._finish = self._finish, None
        if finish is None:
            return
        try:
            self._file.close()
        finally:
            finish()
