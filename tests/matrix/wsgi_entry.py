"""The WSGI entry point for the matrix's servers: the ASGI app named by ``BRIDGE_MATRIX_APP``
(a module of ``tests.matrix.asgi_apps`` exposing ``asgi``, and optionally ``ADAPTER``, the
``AsgiToWsgi`` options its users need) through ``AsgiToWsgi``."""

from __future__ import annotations

import importlib
import os

from bridge import AsgiToWsgi

_module = importlib.import_module(f"tests.matrix.asgi_apps.{os.environ['BRIDGE_MATRIX_APP']}")
app = AsgiToWsgi(_module.asgi, **getattr(_module, "ADAPTER", {}))
