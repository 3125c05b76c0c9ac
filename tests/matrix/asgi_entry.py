"""ASGI entry points for the matrix's servers: the WSGI app named by ``BRIDGE_MATRIX_APP``
(a module of ``tests.matrix.wsgi_apps`` exposing ``wsgi``) through ``WsgiToAsgi``, served as it
is (``app``) or mounted at ``/mnt`` under FastAPI (``fastapi_mount``) or Starlette
(``starlette_mount``)."""

from __future__ import annotations

import importlib
import os

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount

from bridge import WsgiToAsgi

_module = importlib.import_module(f"tests.matrix.wsgi_apps.{os.environ['BRIDGE_MATRIX_APP']}")
app = WsgiToAsgi(_module.wsgi, threads=8)

fastapi_mount = FastAPI()
fastapi_mount.mount("/mnt", app)

starlette_mount = Starlette(routes=[Mount("/mnt", app=app)])
