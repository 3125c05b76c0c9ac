"""The peer adapters the benchmarks build that need more than a constructor call."""

from __future__ import annotations

import warnings
from typing import Any

UVICORN_OWN = "uvicorn's own WSGIMiddleware"


def uvicorn_own(app: Any) -> Any:
    """uvicorn's own WSGI middleware, deprecated (it warns when made). The public name
    ``uvicorn.middleware.wsgi.WSGIMiddleware`` is a2wsgi's class whenever a2wsgi is installed,
    as it is here, so building that would measure a2wsgi twice."""
    from uvicorn.middleware import wsgi

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return wsgi._WSGIMiddleware(app)
